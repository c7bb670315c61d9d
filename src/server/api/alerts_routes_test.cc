// /api/alerts through the Router, without a socket, with alerts ingested from detections the
// way the gateway ingests them.
#include <gtest/gtest.h>

#include "server/api/routes_test_fixture.h"

namespace quell::server {
namespace {

using nlohmann::json;

class AlertsRoutesTest : public testing::RoutesTest {
 protected:
  // Ingests a detection; returns the alert id.
  std::string Detect(const std::string& device, const std::string& key,
                     const std::string& severity, UnixMillis time) {
    quell::v1::Detection d;
    d.set_detection_id("det-" + std::to_string(++detections_));
    d.set_detector_id("quell.test");
    d.set_title("Test " + key);
    d.set_severity(severity);
    d.set_time_unix_ms(time);
    d.set_dedup_key(key);
    auto r = alerts_->Ingest(device, d);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->alert_id : "";
  }

  int detections_ = 0;
};

TEST_F(AlertsRoutesTest, ListFiltersPagesAndOrders) {
  const UnixMillis t = clock_.Now();
  std::string low = Detect("m1", "a", "Low", t - 3000);
  std::string high = Detect("m1", "b", "High", t - 1000);
  std::string medium = Detect("m2", "c", "Medium", t - 2000);

  Reply all = Call("GET", "/api/alerts", viewer_);
  ASSERT_EQ(all.status, 200) << all.body.dump();
  // Default: most recently active first.
  EXPECT_EQ(Ids(all), (std::vector<std::string>{high, medium, low}));
  EXPECT_EQ(all.body["value"][0]["computerDnsName"], "h-m1");

  EXPECT_EQ(Ids(Call("GET", "/api/alerts?$filter=machineId%20eq%20'm2'", viewer_)),
            std::vector<std::string>{medium});
  EXPECT_EQ(Ids(Call("GET", "/api/alerts?$filter=severity%20eq%20'High'", viewer_)),
            std::vector<std::string>{high});
  EXPECT_EQ(Ids(Call("GET", "/api/alerts?$filter=status%20eq%20'New'%20and%20machineId%20eq%20'm1'",
                     viewer_)),
            (std::vector<std::string>{high, low}));
  EXPECT_EQ(Ids(Call("GET", "/api/alerts?$orderby=severity%20desc", viewer_)),
            (std::vector<std::string>{high, medium, low}));
  EXPECT_EQ(Ids(Call("GET", "/api/alerts?$orderby=severity", viewer_)),
            (std::vector<std::string>{low, medium, high}));
  EXPECT_EQ(Ids(Call("GET", "/api/alerts?$orderby=lastActivity%20asc&$top=1&$skip=1", viewer_)),
            std::vector<std::string>{medium});

  EXPECT_EQ(Call("GET", "/api/alerts?$filter=severity%20eq%20'Critical'", viewer_).status, 400);
  EXPECT_EQ(Call("GET", "/api/alerts?$filter=status%20eq%20'Open'", viewer_).status, 400);
  EXPECT_EQ(Call("GET", "/api/alerts?$orderby=title", viewer_).status, 400);
  EXPECT_EQ(Call("GET", "/api/alerts", "").status, 401);
}

TEST_F(AlertsRoutesTest, GetOne) {
  std::string id = Detect("m1", "a", "Low", clock_.Now());
  Reply r = Call("GET", "/api/alerts/" + id, viewer_);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["id"], id);
  EXPECT_EQ(r.body["status"], "New");
  EXPECT_EQ(r.body["eventCount"], 1);
  EXPECT_EQ(r.body["machineId"], "m1");
  EXPECT_EQ(Call("GET", "/api/alerts/nope", viewer_).status, 404);
}

TEST_F(AlertsRoutesTest, PatchNeedsResponderValidatesAndIsAudited) {
  std::string id = Detect("m1", "a", "Low", clock_.Now());
  const std::string path = "/api/alerts/" + id;
  EXPECT_EQ(Call("PATCH", path, viewer_, R"({"status":"Resolved"})").status, 403);

  Reply ok = Call("PATCH", path, responder_,
                  R"({"status":"Resolved","assignedTo":"alice@example.com",)"
                  R"("classification":"TruePositive","determination":"Malware",)"
                  R"("comment":"confirmed"})");
  ASSERT_EQ(ok.status, 200) << ok.body.dump();
  EXPECT_EQ(ok.body["status"], "Resolved");
  EXPECT_EQ(ok.body["assignedTo"], "alice@example.com");
  EXPECT_EQ(ok.body["classification"], "TruePositive");
  EXPECT_EQ(ok.body["determination"], "Malware");
  EXPECT_FALSE(ok.body["resolvedDateTime"].is_null());
  ASSERT_EQ(ok.body["comments"].size(), 1u);
  EXPECT_EQ(ok.body["comments"][0]["createdBy"], "alice");
  EXPECT_EQ(Call("GET", path, viewer_).body, ok.body);

  for (const char* bad : {R"({"severity":"High"})", R"({"status":"Closed"})",
                          R"({"classification":"Maybe"})", R"({"determination":"Apt"})",
                          R"({"determination":"Clean"})",  // not a TruePositive determination
                          R"({"status":1})", R"({})", "[]", "not json"}) {
    Reply r = Call("PATCH", path, responder_, bad);
    EXPECT_EQ(r.status, 400) << bad << " -> " << r.body.dump();
  }
  EXPECT_EQ(Call("PATCH", "/api/alerts/nope", responder_, R"({"status":"New"})").status, 404);

  // Clearing with null.
  Reply cleared = Call("PATCH", path, responder_,
                       R"({"classification":null,"determination":null,"assignedTo":null})");
  ASSERT_EQ(cleared.status, 200) << cleared.body.dump();
  EXPECT_TRUE(cleared.body["classification"].is_null());
  EXPECT_TRUE(cleared.body["assignedTo"].is_null());

  Reply audit = Call("GET", "/api/audit", admin_);
  int updates = 0;
  for (const auto& e : audit.body["value"]) {
    if (e.value("operation", "") == "alert.updated" && e.value("target", "") == id) ++updates;
  }
  EXPECT_EQ(updates, 2);
}

TEST_F(AlertsRoutesTest, DiagnosticNoopAcceptsEmitTestDetection) {
  Reply ok = Call("POST", "/api/machines/m1/diagnosticNoop", responder_,
                  R"({"Comment":"c","EmitTestDetection":true})");
  ASSERT_EQ(ok.status, 201) << ok.body.dump();
  auto action = store_->GetAction(ok.body["id"]);
  ASSERT_TRUE(action.ok());
  EXPECT_EQ(json::parse(action->parameters_json), json({{"EmitTestDetection", true}}));
  EXPECT_EQ(Call("POST", "/api/machines/m2/diagnosticNoop", responder_,
                 R"({"Comment":"c","EmitTestDetection":"yes"})")
                .status,
            400);
}

}  // namespace
}  // namespace quell::server
