// The REST routes through the Router, without a socket: status codes, error bodies, roles,
// and the MDE shapes a client sees.
#include <gtest/gtest.h>

#include "server/api/routes_test_fixture.h"

namespace quell::server {
namespace {

using nlohmann::json;

class ApiRoutesTest : public testing::RoutesTest {
 protected:
  // POSTs an action route on `machine` and lets the agent report success; returns its id.
  std::string SucceededAction(const std::string& route, const std::string& machine,
                              const std::string& body) {
    Reply r = Call("POST", "/api/machines/" + machine + "/" + route, responder_, body);
    EXPECT_EQ(r.status, 201) << r.body.dump();
    std::string id = r.body.value("id", "");
    EXPECT_TRUE(actions_->ApplyAgentReport(machine, {.action_id = id,
                                                     .event = ActionEvent::kAgentSucceeded})
                    .ok());
    return id;
  }
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
  ASSERT_EQ(list.body["value"].size(), 2u);
  EXPECT_EQ(list.body["value"][0]["computerDnsName"], "h-m1");
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
  EXPECT_NE(r.body.find("quell_devices{healthStatus=\"Active\"} 2\n"), std::string::npos);
  EXPECT_NE(r.body.find("quell_agents_connected 0\n"), std::string::npos);
  EXPECT_EQ(Call("GET", "/metrics", "").status, 401);
}

TEST_F(ApiRoutesTest, UnknownRoutesAre404AndWrongMethods405) {
  EXPECT_EQ(Call("GET", "/api/nothing", admin_).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/machines", admin_).status, 405);
}

// ---- undo and files (issue 4) ----

TEST_F(ApiRoutesTest, UndoCreatesTheReverseActionAndRefusesASecondUndo) {
  std::string isolate = SucceededAction("isolate", "m1", R"({"Comment":"c"})");
  EXPECT_EQ(Call("POST", "/api/machineactions/" + isolate + "/undo", viewer_,
                 R"({"Comment":"x"})").status, 403);
  EXPECT_EQ(Call("POST", "/api/machineactions/" + isolate + "/undo", responder_, "{}").status,
            400);
  Reply undo = Call("POST", "/api/machineactions/" + isolate + "/undo", responder_,
                    R"({"Comment":"false positive"})");
  ASSERT_EQ(undo.status, 201) << undo.body.dump();
  EXPECT_EQ(undo.body["type"], "Unisolate");
  EXPECT_EQ(undo.body["requestorComment"], "false positive");
  Reply again = Call("POST", "/api/machineactions/" + isolate + "/undo", responder_,
                     R"({"Comment":"again"})");
  EXPECT_EQ(again.status, 400);
  EXPECT_NE(again.body["error"]["message"].get<std::string>().find("already undone"),
            std::string::npos);
  EXPECT_EQ(Call("POST", "/api/machineactions/nope/undo", responder_, R"({"Comment":"c"})").status,
            404);
  // The audit log links the undo to what it undoes.
  Reply audit = Call("GET", "/api/audit", admin_);
  bool linked = false;
  for (const auto& e : audit.body["value"]) {
    linked |= e["operation"] == "action.undo" && e["details"]["undoes"] == isolate;
  }
  EXPECT_TRUE(linked) << audit.body.dump();
}

TEST_F(ApiRoutesTest, StopAndQuarantineShowsRelatedFileInfo) {
  std::string sha1(40, 'a');
  Reply r = Call("POST", "/api/machines/m1/StopAndQuarantineFile", responder_,
                 R"({"Comment":"c","Sha1":")" + sha1 + R"("})");
  ASSERT_EQ(r.status, 201) << r.body.dump();
  EXPECT_EQ(r.body["relatedFileInfo"],
            (json{{"fileIdentifier", sha1}, {"fileIdentifierType", "Sha1"}}));
  EXPECT_EQ(Call("POST", "/api/machines/m1/StopAndQuarantineFile", responder_,
                 R"({"Comment":"c"})").status, 400);
}

TEST_F(ApiRoutesTest, FleetWideQuarantineTargetsEveryDeviceThatSawTheFile) {
  std::string sha256(64, 'b');
  Reply none = Call("POST", "/api/files/" + sha256 + "/stopAndQuarantine", responder_,
                    R"({"Comment":"c"})");
  EXPECT_EQ(none.status, 404);
  ASSERT_TRUE(store_->CreateDevice({.id = "m3", .computer_dns_name = "h-m3"}).ok());
  ASSERT_TRUE(store_
                  ->RecordFileSightings(
                      {{.device_id = "m1", .sha256 = sha256, .path = "/tmp/old",
                        .source = "exec", .first_seen = 1, .last_seen = 1},
                       {.device_id = "m1", .sha256 = sha256, .path = "/tmp/new",
                        .source = "scan", .first_seen = 2, .last_seen = 2},
                       {.device_id = "m2", .sha256 = sha256, .path = "/opt/x",
                        .source = "exec", .first_seen = 1, .last_seen = 1}})
                  .ok());
  Reply seen = Call("GET", "/api/files/" + sha256 + "/sightings", viewer_);
  ASSERT_EQ(seen.status, 200);
  EXPECT_EQ(seen.body["value"].size(), 3u);
  EXPECT_EQ(seen.body["value"][0]["computerDnsName"], "h-m1");

  EXPECT_EQ(Call("POST", "/api/files/" + sha256 + "/stopAndQuarantine", viewer_,
                 R"({"Comment":"c"})").status, 403);
  EXPECT_EQ(Call("POST", "/api/files/xyz/stopAndQuarantine", responder_,
                 R"({"Comment":"c"})").status, 400);
  Reply r = Call("POST", "/api/files/" + sha256 + "/stopAndQuarantine", responder_,
                 R"({"Comment":"outbreak"})");
  ASSERT_EQ(r.status, 201) << r.body.dump();
  ASSERT_EQ(r.body["value"].size(), 2u);  // m1 and m2, not m3
  std::map<std::string, json> by_machine;
  for (const auto& a : r.body["value"]) by_machine[a["machineId"]] = a;
  ASSERT_TRUE(by_machine.contains("m1") && by_machine.contains("m2"));
  auto params = json::parse(store_->GetAction(by_machine["m1"]["id"])->parameters_json);
  EXPECT_EQ(params, (json{{"Sha256", sha256}, {"Path", "/tmp/new"}}));  // freshest path
  EXPECT_EQ(by_machine["m2"]["type"], "StopAndQuarantineFile");
}

}  // namespace
}  // namespace quell::server
