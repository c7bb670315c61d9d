// /api/indicators and PATCH /api/machines/{id} through the Router, without a socket.
#include <gtest/gtest.h>

#include "server/api/routes_test_fixture.h"
#include "server/indicators/indicator_publisher.h"

namespace quell::server {
namespace {

using nlohmann::json;

class RecordingStream final : public AgentStream {
 public:
  void Enqueue(quell::v1::ServerMessage m) override { messages.push_back(std::move(m)); }
  void Terminate(int, const std::string&) override {}
  std::vector<quell::v1::ServerMessage> messages;
};

class IndicatorsRoutesTest : public testing::RoutesTest {
 protected:
  void SetUp() override {
    RoutesTest::SetUp();
    publisher_ = std::make_unique<IndicatorPublisher>(*store_, clock_);  // not started
    api_->indicators = publisher_.get();
  }

  static std::string Body(const std::string& value, const std::string& action = "Block",
                          const std::string& type = "FileSha256") {
    return json{{"indicatorValue", value}, {"indicatorType", type}, {"action", action},
                {"title", "t"}}
        .dump();
  }
  static std::string Hash(int n) {
    std::string h = std::to_string(n);
    return std::string(64 - h.size(), 'a') + h;
  }

  std::unique_ptr<IndicatorPublisher> publisher_;
};

TEST_F(IndicatorsRoutesTest, SubmitUpdatesTheSameTypeAndValue) {
  Reply first = Call("POST", "/api/indicators", responder_, Body(std::string(64, 'A')));
  ASSERT_EQ(first.status, 200) << first.body.dump();
  EXPECT_EQ(first.body["indicatorValue"], std::string(64, 'a'));
  EXPECT_EQ(first.body["createdBy"], "alice");
  Reply second = Call("POST", "/api/indicators", admin_, Body(std::string(64, 'a'), "Allowed"));
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(second.body["id"], first.body["id"]);
  EXPECT_EQ(second.body["action"], "Allowed");
  EXPECT_EQ(second.body["createdBy"], "alice");
  EXPECT_EQ(second.body["lastUpdatedBy"], "admin");
  std::string id = first.body["id"];
  EXPECT_EQ(Call("GET", "/api/indicators/" + id, viewer_).body["action"], "Allowed");
  auto audit = store_->ListAudit({.target = id});
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ((*audit)[1].actor, "admin");
  EXPECT_EQ((*audit)[1].operation, "indicator.submitted");

  Reply bad = Call("POST", "/api/indicators", responder_, Body("abc"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["message"],
            "indicatorValue: 'abc' is not a SHA-256 hash (64 hexadecimal digits)");
  EXPECT_EQ(Call("POST", "/api/indicators", responder_, Body(Hash(1), "Audit")).body["error"]["message"],
            "generateAlert must be true when action is Audit");
  EXPECT_EQ(Call("POST", "/api/indicators", viewer_, Body(Hash(2))).status, 403);
}

TEST_F(IndicatorsRoutesTest, ListFilters) {
  Call("POST", "/api/indicators", responder_, Body(Hash(1)));
  Call("POST", "/api/indicators", responder_, Body("Evil.Example.", "Block", "DomainName"));
  Call("POST", "/api/indicators", responder_, Body("192.0.2.0/24", "Allowed", "IpAddress"));
  auto count = [&](const std::string& query) {
    Reply r = Call("GET", "/api/indicators" + query, viewer_);
    EXPECT_EQ(r.status, 200) << r.body.dump();
    return r.body["value"].size();
  };
  EXPECT_EQ(count(""), 3u);
  EXPECT_EQ(count("?$filter=action%20eq%20'Block'"), 2u);
  EXPECT_EQ(count("?$filter=indicatorType%20eq%20'DomainName'%20and%20indicatorValue%20eq%20'EVIL.example'"), 1u);
  EXPECT_EQ(count("?$top=1&$skip=2"), 1u);
  EXPECT_EQ(Call("GET", "/api/indicators?$filter=action%20eq%20'Nuke'", viewer_).status, 400);
  EXPECT_EQ(Call("GET", "/api/indicators?$filter=title%20eq%20'x'", viewer_).status, 400);
}

TEST_F(IndicatorsRoutesTest, ImportReportsEachItemAndCapsAt500) {
  json items = json::array();
  for (int i = 0; i < 500; ++i) items.push_back(json::parse(Body(Hash(i))));
  Reply ok = Call("POST", "/api/indicators/import", responder_, json{{"Indicators", items}}.dump());
  ASSERT_EQ(ok.status, 200) << ok.body.dump().substr(0, 300);
  EXPECT_EQ(ok.body["value"].size(), 500u);
  EXPECT_EQ(store_->GetIndicatorVersion()->current, 500);

  items.push_back(json::parse(Body(Hash(500))));
  Reply over = Call("POST", "/api/indicators/import", responder_, json{{"Indicators", items}}.dump());
  EXPECT_EQ(over.status, 400);
  EXPECT_EQ(over.body["error"]["message"], "Indicators has 501 entries; at most 500 per call");
  EXPECT_EQ(store_->GetIndicatorVersion()->current, 500);

  json mixed = json::array({json::parse(Body(Hash(900))), json::parse(Body("zz")),
                            json::parse(Body(Hash(900)))});
  Reply r = Call("POST", "/api/indicators/import", responder_, json{{"Indicators", mixed}}.dump());
  ASSERT_EQ(r.status, 200);
  EXPECT_FALSE(r.body["value"][0]["isFailed"]);
  EXPECT_TRUE(r.body["value"][0]["failureReason"].is_null());
  EXPECT_TRUE(r.body["value"][1]["isFailed"]);
  EXPECT_EQ(r.body["value"][1]["indicator"], "zz");
  EXPECT_EQ(r.body["value"][2]["failureReason"], "the same indicator is item 1 of this import");
  EXPECT_EQ(Call("POST", "/api/indicators/import", responder_, R"({"Indicators":[]})").status, 400);
  EXPECT_EQ(Call("POST", "/api/indicators/import", responder_, R"({"Items":[]})").status, 400);
}

TEST_F(IndicatorsRoutesTest, DeleteAndBatchDelete) {
  std::string a = Call("POST", "/api/indicators", responder_, Body(Hash(1))).body["id"];
  std::string b = Call("POST", "/api/indicators", responder_, Body(Hash(2))).body["id"];
  std::string c = Call("POST", "/api/indicators", responder_, Body(Hash(3))).body["id"];
  EXPECT_EQ(Call("DELETE", "/api/indicators/" + a, viewer_).status, 403);
  EXPECT_EQ(Call("DELETE", "/api/indicators/" + a, responder_).status, 204);
  EXPECT_EQ(Call("DELETE", "/api/indicators/" + a, responder_).status, 404);
  EXPECT_EQ(Call("POST", "/api/indicators/BatchDelete", responder_,
                 json{{"IndicatorIds", {b, c, "unknown"}}}.dump())
                .status,
            204);
  EXPECT_TRUE(Call("GET", "/api/indicators", viewer_).body["value"].empty());
  EXPECT_EQ(store_->ListAudit({.target = c})->back().operation, "indicator.deleted");
}

TEST_F(IndicatorsRoutesTest, ChangesReachConnectedAgentsAndMachinesShowTheirAck) {
  RecordingStream stream;
  auto link = std::make_shared<AgentLink>("m1", &stream);
  publisher_->Connected(link, 0);
  Call("POST", "/api/indicators", responder_,
       json{{"indicatorValue", "evil.example"}, {"indicatorType", "DomainName"},
            {"action", "Block"}, {"title", "t"}, {"rbacGroupNames", {"lab"}}}
           .dump());
  ASSERT_TRUE(publisher_->PublishPending().ok());
  ASSERT_EQ(stream.messages.size(), 1u);
  EXPECT_EQ(stream.messages[0].indicator_delta().upserts_size(), 0);  // m1 is not in "lab"

  EXPECT_EQ(Call("PATCH", "/api/machines/m1", responder_, R"({"rbacGroupName":"lab"})").status, 403);
  EXPECT_EQ(Call("PATCH", "/api/machines/m1", admin_, R"({"group":"lab"})").status, 400);
  EXPECT_EQ(Call("PATCH", "/api/machines/nope", admin_, R"({"rbacGroupName":"lab"})").status, 404);
  Reply patched = Call("PATCH", "/api/machines/m1", admin_, R"({"rbacGroupName":"lab"})");
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  EXPECT_EQ(patched.body["rbacGroupName"], "lab");
  EXPECT_TRUE(patched.body["indicatorVersion"].is_null());
  EXPECT_EQ(store_->ListAudit({.target = "m1"})->back().operation, "device.group_changed");
  ASSERT_TRUE(publisher_->PublishPending().ok());
  ASSERT_EQ(stream.messages.size(), 2u);
  EXPECT_TRUE(stream.messages[1].indicator_delta().full());
  EXPECT_EQ(stream.messages[1].indicator_delta().upserts(0).value(), "evil.example");

  ASSERT_TRUE(publisher_->Acknowledged("m1", 1).ok());
  EXPECT_EQ(Call("GET", "/api/machines/m1", viewer_).body["indicatorVersion"], 1);
  Reply all = Call("GET", "/api/machines", viewer_);
  EXPECT_EQ(all.body["value"][0]["indicatorVersion"], 1);
  EXPECT_TRUE(all.body["value"][1]["indicatorVersion"].is_null());
}

}  // namespace
}  // namespace quell::server
