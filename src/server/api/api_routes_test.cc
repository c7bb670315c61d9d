// The REST routes through the Router, without a socket: status codes, error bodies, roles,
// and the MDE shapes a client sees.
#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"
#include "server/api/api_context.h"
#include "server/auth/api_tokens.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server {
namespace {

using nlohmann::json;

class ApiRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(OpenSqliteStore(dir_ + "/q.db")).value();
    actions_ = std::make_unique<ActionCenter>(*store_, clock_);
    api_ = std::make_unique<ApiContext>(ApiContext{*store_, *actions_, sessions_, clock_, 90'000});
    AddApiRoutes(router_, *api_);
    admin_ = CreateApiToken(*store_, clock_, "admin", Role::kAdmin)->secret;
    responder_ = CreateApiToken(*store_, clock_, "alice", Role::kResponder)->secret;
    viewer_ = CreateApiToken(*store_, clock_, "victor", Role::kViewer)->secret;
    ASSERT_TRUE(store_->CreateDevice({.id = "m1",
                                      .computer_dns_name = "h1",
                                      .last_seen = clock_.Now()})
                    .ok());
  }

  struct Reply {
    int status;
    json body;
  };

  Reply Call(const std::string& method, const std::string& target, const std::string& token,
             const std::string& body = "") {
    auto parsed = http::ParseRequestTarget(target);
    EXPECT_TRUE(parsed.ok());
    http::Request request{.method = method,
                          .target = target,
                          .path = parsed->path,
                          .query = parsed->query,
                          .path_params = {},
                          .headers = {},
                          .body = body,
                          .remote_address = "127.0.0.1"};
    if (!token.empty()) request.headers["authorization"] = "Bearer " + token;
    http::Response response = router_.Dispatch(request);
    return {response.status, json::parse(response.body, nullptr, false)};
  }

  quell::testing::TempDir temp_dir_;  // declared first: removed after everything using it
  std::string dir_ = temp_dir_.path();
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  SessionRegistry sessions_;
  std::unique_ptr<ActionCenter> actions_;
  std::unique_ptr<ApiContext> api_;
  http::Router router_;
  std::string admin_, responder_, viewer_;
};

TEST_F(ApiRoutesTest, MachinesNeedAToken) {
  Reply r = Call("GET", "/api/machines", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body["error"]["code"], "Unauthenticated");
  EXPECT_EQ(Call("GET", "/api/machines", "qk_wrong").status, 401);
}

TEST_F(ApiRoutesTest, ListAndGetMachines) {
  Reply list = Call("GET", "/api/machines", viewer_);
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body["value"].size(), 1u);
  EXPECT_EQ(list.body["value"][0]["computerDnsName"], "h1");
  EXPECT_EQ(list.body["value"][0]["healthStatus"], "Active");
  EXPECT_EQ(Call("GET", "/api/machines/m1", viewer_).body["id"], "m1");
  Reply missing = Call("GET", "/api/machines/nope", viewer_);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body["error"]["code"], "NotFound");
}

TEST_F(ApiRoutesTest, IsolateCreatesAPendingMachineAction) {
  Reply r = Call("POST", "/api/machines/m1/isolate", responder_,
                 R"({"Comment":"suspicious","IsolationType":"Selective"})");
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(r.body["type"], "Isolate");
  EXPECT_EQ(r.body["scope"], "Selective");
  EXPECT_EQ(r.body["status"], "Pending");
  EXPECT_EQ(r.body["requestor"], "alice");
  EXPECT_EQ(r.body["requestorComment"], "suspicious");
  EXPECT_EQ(r.body["machineId"], "m1");
  Reply got = Call("GET", "/api/machineactions/" + r.body["id"].get<std::string>(), viewer_);
  EXPECT_EQ(got.body, r.body);
}

TEST_F(ApiRoutesTest, RoutesAreCaseInsensitiveLikeDefender) {
  EXPECT_EQ(Call("POST", "/api/machines/m1/Isolate", responder_, R"({"Comment":"c"})").status,
            201);
}

TEST_F(ApiRoutesTest, SecondIsolateWhileOneIsOpenIs400) {
  ASSERT_EQ(Call("POST", "/api/machines/m1/isolate", responder_, R"({"Comment":"c"})").status,
            201);
  Reply r = Call("POST", "/api/machines/m1/isolate", responder_, R"({"Comment":"c"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["message"], "Action is already in progress");
}

TEST_F(ApiRoutesTest, ViewerCannotIsolate) {
  Reply r = Call("POST", "/api/machines/m1/isolate", viewer_, R"({"Comment":"c"})");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body["error"]["code"], "PermissionDenied");
  EXPECT_TRUE(store_->ListActions({})->empty());
}

TEST_F(ApiRoutesTest, BadBodiesAre400WithAReason) {
  for (const auto& [body, mentions] : std::vector<std::pair<std::string, std::string>>{
           {"", "body"},
           {"{not json", "JSON"},
           {"[1,2]", "object"},
           {R"({"IsolationType":"Full"})", "Comment"},
           {R"({"Comment":"c","IsolationType":"Sideways"})", "Sideways"},
           {R"({"Comment":"c","Extra":1})", "Extra"},
       }) {
    Reply r = Call("POST", "/api/machines/m1/isolate", responder_, body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find(mentions), std::string::npos)
        << r.body.dump();
  }
  EXPECT_EQ(Call("POST", "/api/machines/nope/isolate", responder_, R"({"Comment":"c"})").status,
            404);
}

TEST_F(ApiRoutesTest, FilterAndPageMachineActions) {
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(1);
    ASSERT_EQ(Call("POST", "/api/machines/m1/diagnosticNoop", responder_, R"({"Comment":"c"})")
                  .status,
              201);
  }
  ASSERT_EQ(Call("POST", "/api/machines/m1/isolate", responder_, R"({"Comment":"c"})").status,
            201);
  auto count = [&](const std::string& query) {
    Reply r = Call("GET", "/api/machineactions?" + query, viewer_);
    EXPECT_EQ(r.status, 200) << query << " " << r.body.dump();
    return r.body["value"].size();
  };
  EXPECT_EQ(count(""), 4u);
  EXPECT_EQ(count("$filter=type%20eq%20'Isolate'"), 1u);
  EXPECT_EQ(count("$filter=status+eq+'Pending'+and+machineId+eq+'m1'"), 4u);
  EXPECT_EQ(count("$filter=status+eq+'Succeeded'"), 0u);
  EXPECT_EQ(count("$top=2"), 2u);
  EXPECT_EQ(count("$top=2&$skip=3"), 1u);
  EXPECT_EQ(Call("GET", "/api/machineactions?$filter=status+eq+'Done'", viewer_).status, 400);
  EXPECT_EQ(Call("GET", "/api/machineactions?$filter=colour+eq+'x'", viewer_).status, 400);
}

TEST_F(ApiRoutesTest, CancelPendingAction) {
  Reply created = Call("POST", "/api/machines/m1/isolate", responder_, R"({"Comment":"c"})");
  std::string id = created.body["id"];
  Reply r = Call("POST", "/api/machineactions/" + id + "/cancel", responder_,
                 R"({"Comment":"mistake"})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["status"], "Cancelled");
  EXPECT_EQ(r.body["cancellationRequestor"], "alice");
  EXPECT_EQ(r.body["cancellationComment"], "mistake");
  EXPECT_EQ(Call("POST", "/api/machineactions/" + id + "/cancel", responder_, "").status, 400);
  EXPECT_EQ(Call("POST", "/api/machineactions/nope/cancel", responder_, "").status, 404);
}

TEST_F(ApiRoutesTest, OffboardIsAdminOnlyAndAudited) {
  EXPECT_EQ(Call("POST", "/api/machines/m1/offboard", responder_, R"({"Comment":"c"})").status,
            403);
  EXPECT_EQ(Call("POST", "/api/machines/m1/offboard", admin_, R"({})").status, 400);
  Reply r = Call("POST", "/api/machines/m1/offboard", admin_, R"({"Comment":"retired"})");
  ASSERT_EQ(r.status, 201);
  EXPECT_EQ(r.body["type"], "Offboard");
  EXPECT_EQ(Call("GET", "/api/machines/m1", viewer_).body["onboardingStatus"], "Offboarded");
  Reply audit = Call("GET", "/api/audit?target=m1", admin_);
  ASSERT_EQ(audit.status, 200);
  EXPECT_EQ(audit.body["value"].back()["operation"], "device.offboarded");
  EXPECT_EQ(Call("GET", "/api/audit", responder_).status, 403);
}

TEST_F(ApiRoutesTest, ActionTypesAreListedAsData) {
  Reply r = Call("GET", "/api/actiontypes", viewer_);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["value"][0]["type"], "Isolate");
  EXPECT_EQ(r.body["value"][0]["undoType"], "Unisolate");
}

TEST_F(ApiRoutesTest, MetricsCountActionsAndDevices) {
  ASSERT_EQ(Call("POST", "/api/machines/m1/isolate", responder_, R"({"Comment":"c"})").status,
            201);
  http::Request request{.method = "GET", .target = "/metrics", .path = "/metrics"};
  request.headers["authorization"] = "Bearer " + viewer_;
  http::Response r = router_.Dispatch(request);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("quell_machine_actions{status=\"Pending\"} 1\n"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("quell_machine_actions{status=\"Succeeded\"} 0\n"), std::string::npos);
  EXPECT_NE(r.body.find("quell_devices{healthStatus=\"Active\"} 1\n"), std::string::npos);
  EXPECT_NE(r.body.find("quell_agents_connected 0\n"), std::string::npos);
  EXPECT_EQ(Call("GET", "/metrics", "").status, 401);
}

TEST_F(ApiRoutesTest, UnknownRoutesAre404AndWrongMethods405) {
  EXPECT_EQ(Call("GET", "/api/nothing", admin_).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/machines", admin_).status, 405);
}

}  // namespace
}  // namespace quell::server
