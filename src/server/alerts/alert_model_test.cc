#include "server/alerts/alert_model.h"

#include <gtest/gtest.h>

namespace quell::server {
namespace {

TEST(AlertModelTest, EnumsAreTheReferenceSpellings) {
  EXPECT_EQ(ParseAlertClassification("TruePositive"), "TruePositive");
  EXPECT_EQ(ParseAlertClassification("InformationalExpectedActivity"),
            "InformationalExpectedActivity");
  EXPECT_EQ(ParseAlertClassification("FalsePositive"), "FalsePositive");
  EXPECT_FALSE(ParseAlertClassification("truePositive"));
  EXPECT_FALSE(ParseAlertClassification("Unknown"));

  EXPECT_EQ(ParseAlertDetermination("Malware"), "Malware");
  EXPECT_EQ(ParseAlertDetermination("ConfirmedActivity"), "ConfirmedUserActivity");
  EXPECT_EQ(ParseAlertDetermination("NotMalicious"), "Clean");
  EXPECT_FALSE(ParseAlertDetermination("Apt"));  // deprecated
  EXPECT_FALSE(ParseAlertDetermination("SecurityPersonnel"));
  EXPECT_FALSE(ParseAlertDetermination("malware"));

  EXPECT_EQ(ParseAlertSeverity("Informational"), AlertSeverity::kInformational);
  EXPECT_FALSE(ParseAlertSeverity("Critical"));
  EXPECT_EQ(ParseAlertStatus("InProgress"), AlertStatus::kInProgress);
  EXPECT_FALSE(ParseAlertStatus("Unknown"));
}

TEST(AlertModelTest, DeterminationMustFitTheClassification) {
  EXPECT_TRUE(DeterminationFits("TruePositive", "Malware"));
  EXPECT_TRUE(DeterminationFits("FalsePositive", "Clean"));
  EXPECT_TRUE(DeterminationFits("InformationalExpectedActivity", "SecurityTesting"));
  EXPECT_TRUE(DeterminationFits("FalsePositive", "Other"));
  EXPECT_FALSE(DeterminationFits("FalsePositive", "Malware"));
  EXPECT_FALSE(DeterminationFits("TruePositive", "Clean"));
  EXPECT_TRUE(DeterminationFits("", "Malware"));
}

TEST(AlertModelTest, JsonHasTheDefenderFieldNames) {
  Alert a;
  a.id = "a1";
  a.title = "t";
  a.severity = AlertSeverity::kHigh;
  a.status = AlertStatus::kNew;
  a.machine_id = "m1";
  a.computer_dns_name = "host1";
  a.first_activity = 0;
  a.last_activity = 1000;
  a.mitre_techniques = {"T1204"};
  a.evidence_json = R"([{"@odata.type":"#microsoft.graph.security.deviceEvidence"}])";
  a.event_count = 3;
  a.comments = {{.comment = "looked", .created_by = "alice", .created = 2000}};
  nlohmann::json j = AlertToJson(a);
  EXPECT_EQ(j["id"], "a1");
  EXPECT_EQ(j["severity"], "High");
  EXPECT_EQ(j["status"], "New");
  EXPECT_TRUE(j["classification"].is_null());
  EXPECT_TRUE(j["determination"].is_null());
  EXPECT_TRUE(j["assignedTo"].is_null());
  EXPECT_TRUE(j["resolvedDateTime"].is_null());
  EXPECT_EQ(j["machineId"], "m1");
  EXPECT_EQ(j["computerDnsName"], "host1");
  EXPECT_EQ(j["lastActivity"], "1970-01-01T00:00:01.000Z");
  EXPECT_EQ(j["mitreTechniques"], nlohmann::json::array({"T1204"}));
  EXPECT_EQ(j["evidence"][0]["@odata.type"], "#microsoft.graph.security.deviceEvidence");
  EXPECT_EQ(j["eventCount"], 3);
  EXPECT_EQ(j["comments"][0]["createdBy"], "alice");
  EXPECT_EQ(j["comments"][0]["comment"], "looked");
  for (const char* key : {"title", "description", "category", "detectionSource", "detectorId",
                          "threatName", "firstActivity", "createdDateTime",
                          "lastUpdateDateTime"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
}

TEST(AlertModelTest, MergeEvidenceAddsOnlyWhatIsNew) {
  nlohmann::json existing = nlohmann::json::array(
      {{{"@odata.type", "file"}, {"sha256", "aa"}, {"createdDateTime", "t1"}}});
  nlohmann::json incoming = nlohmann::json::array(
      {{{"@odata.type", "file"}, {"sha256", "aa"}, {"createdDateTime", "t2"}},
       {{"@odata.type", "file"}, {"sha256", "bb"}, {"createdDateTime", "t2"}},
       {{"@odata.type", "file"}, {"sha256", "bb"}, {"createdDateTime", "t3"}}});
  nlohmann::json merged = MergeEvidence(existing, incoming);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0]["createdDateTime"], "t1");  // the first sighting is kept
  EXPECT_EQ(merged[1]["sha256"], "bb");
  EXPECT_EQ(MergeEvidence(existing, incoming, 1).size(), 1u);  // bounded
  EXPECT_EQ(MergeEvidence(nullptr, incoming).size(), 2u);
}

}  // namespace
}  // namespace quell::server
