// AlertService against the real SQLite store: dedupe, exactly-once ingestion, PATCH rules.
#include "server/alerts/alert_service.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/testing/temp_dir.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server {
namespace {

constexpr UnixMillis kT0 = 1'700'000'000'000;
constexpr UnixMillis kMinute = 60'000;

class AlertServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_ / "quell.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    for (const char* id : {"dev-1", "dev-2"}) {
      Device d;
      d.id = id;
      d.computer_dns_name = std::string("host-") + id;
      d.os_platform = "Linux";
      ASSERT_TRUE(store_->CreateDevice(d).ok());
    }
    service_ = std::make_unique<AlertService>(*store_, clock_,
                                              AlertServiceOptions{.dedup_window_ms = 60 * kMinute});
  }

  quell::v1::Detection Det(const std::string& id, UnixMillis time, std::string key = "k1") {
    quell::v1::Detection d;
    d.set_detection_id(id);
    d.set_detector_id("quell.test");
    d.set_title("Test detection");
    d.set_severity("Low");
    d.set_category("Malware");
    d.set_detection_source("Antivirus");
    d.set_threat_name("Eicar");
    d.add_mitre_techniques("T1204");
    d.set_time_unix_ms(time);
    d.set_dedup_key(std::move(key));
    d.set_evidence_json(
        nlohmann::json::array({{{"@odata.type", "#microsoft.graph.security.fileEvidence"},
                                {"fileDetails", {{"sha256", id}}}}})
            .dump());
    return d;
  }

  AlertService::Ingested Ingest(const std::string& device, const quell::v1::Detection& d) {
    auto r = service_->Ingest(device, d);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : AlertService::Ingested{};
  }

  std::vector<Alert> All() {
    auto r = store_->ListAlerts({});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<Alert>{};
  }

  quell::testing::TempDir dir_;
  FakeClock clock_{kT0};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AlertService> service_;
};

TEST_F(AlertServiceTest, FirstDetectionCreatesAnAlertWithTheDeviceFields) {
  auto r = Ingest("dev-1", Det("d1", kT0 - 5000));
  EXPECT_EQ(r.outcome, AlertService::Outcome::kCreated);
  auto alert = store_->GetAlert(r.alert_id);
  ASSERT_TRUE(alert.ok());
  EXPECT_EQ(alert->machine_id, "dev-1");
  EXPECT_EQ(alert->computer_dns_name, "host-dev-1");
  EXPECT_EQ(alert->severity, AlertSeverity::kLow);
  EXPECT_EQ(alert->status, AlertStatus::kNew);
  EXPECT_EQ(alert->first_activity, kT0 - 5000);
  EXPECT_EQ(alert->last_activity, kT0 - 5000);
  EXPECT_EQ(alert->created, kT0);
  EXPECT_EQ(alert->event_count, 1);
  EXPECT_EQ(alert->mitre_techniques, std::vector<std::string>{"T1204"});
  // The file evidence as reported, plus the device evidence the server always adds.
  auto evidence = nlohmann::json::parse(alert->evidence_json);
  ASSERT_EQ(evidence.size(), 2u);
  EXPECT_EQ(evidence[1]["@odata.type"], "#microsoft.graph.security.deviceEvidence");
  EXPECT_EQ(evidence[1]["mdeDeviceId"], "dev-1");
  auto audit = store_->ListAudit({.target = r.alert_id});
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].operation, "alert.created");
  EXPECT_EQ((*audit)[0].actor, "agent:dev-1");
}

TEST_F(AlertServiceTest, RepeatsWithinTheWindowUpdateOneAlert) {
  auto first = Ingest("dev-1", Det("d1", kT0));
  auto second = Ingest("dev-1", Det("d2", kT0 + 10 * kMinute));
  EXPECT_EQ(second.outcome, AlertService::Outcome::kUpdated);
  EXPECT_EQ(second.alert_id, first.alert_id);
  auto alerts = All();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 2);
  EXPECT_EQ(alerts[0].first_activity, kT0);
  EXPECT_EQ(alerts[0].last_activity, kT0 + 10 * kMinute);
  EXPECT_EQ(nlohmann::json::parse(alerts[0].evidence_json).size(), 3u);  // d1, d2 files + device
  auto audit = store_->ListAudit({.target = first.alert_id});
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ((*audit)[1].operation, "alert.updated");
}

TEST_F(AlertServiceTest, OutsideTheWindowOtherKeyOtherDeviceOrResolvedMakeNewAlerts) {
  auto first = Ingest("dev-1", Det("d1", kT0));
  // The window is measured from the alert's last activity: 61 minutes later is a new alert.
  EXPECT_EQ(Ingest("dev-1", Det("d2", kT0 + 61 * kMinute)).outcome,
            AlertService::Outcome::kCreated);
  EXPECT_EQ(Ingest("dev-1", Det("d3", kT0, "k2")).outcome, AlertService::Outcome::kCreated);
  EXPECT_EQ(Ingest("dev-2", Det("d4", kT0)).outcome, AlertService::Outcome::kCreated);
  EXPECT_EQ(All().size(), 4u);

  // A resolved alert is never reopened by a new detection.
  auto resolved = service_->Update(first.alert_id, {.status = AlertStatus::kResolved}, "alice");
  ASSERT_TRUE(resolved.ok());
  auto again = Ingest("dev-2", Det("d5", kT0 + kMinute));  // dev-2's alert is still open
  EXPECT_EQ(again.outcome, AlertService::Outcome::kUpdated);
  // Empty dedup keys never merge.
  EXPECT_EQ(Ingest("dev-1", Det("d6", kT0, "")).outcome, AlertService::Outcome::kCreated);
  EXPECT_EQ(Ingest("dev-1", Det("d7", kT0, "")).outcome, AlertService::Outcome::kCreated);
  EXPECT_EQ(All().size(), 6u);
}

TEST_F(AlertServiceTest, AResentDetectionChangesNothing) {
  auto first = Ingest("dev-1", Det("d1", kT0));
  EXPECT_EQ(Ingest("dev-1", Det("d1", kT0)).outcome, AlertService::Outcome::kDuplicate);
  Ingest("dev-1", Det("d2", kT0 + 1));
  EXPECT_EQ(Ingest("dev-1", Det("d2", kT0 + 1)).outcome, AlertService::Outcome::kDuplicate);
  auto alerts = All();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].event_count, 2);
  EXPECT_FALSE(service_->Ingest("dev-1", Det("", kT0)).ok());
}

TEST_F(AlertServiceTest, UpdateAppliesChangesAuditsAndChecksTheDetermination) {
  auto first = Ingest("dev-1", Det("d1", kT0));
  clock_.Advance(kMinute);
  auto updated = service_->Update(first.alert_id,
                                  {.status = AlertStatus::kResolved,
                                   .assigned_to = "alice@example.com",
                                   .classification = "FalsePositive",
                                   .determination = "NotMalicious",
                                   .comment = "test file"},
                                  "alice");
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  auto stored = store_->GetAlert(first.alert_id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->status, AlertStatus::kResolved);
  EXPECT_EQ(stored->resolved, kT0 + kMinute);
  EXPECT_EQ(stored->assigned_to, "alice@example.com");
  EXPECT_EQ(stored->classification, "FalsePositive");
  EXPECT_EQ(stored->determination, "Clean");
  ASSERT_EQ(stored->comments.size(), 1u);
  EXPECT_EQ(stored->comments[0].created_by, "alice");
  EXPECT_EQ(stored->last_update, kT0 + kMinute);
  EXPECT_EQ(*updated, *stored);

  EXPECT_EQ(service_->Update(first.alert_id, {.determination = "Malware"}, "bob").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->Update("nope", {.assigned_to = "x"}, "bob").status().code(),
            StatusCode::kNotFound);
  auto reopened = service_->Update(first.alert_id, {.status = AlertStatus::kInProgress}, "bob");
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE(reopened->resolved.has_value());
  auto audit = store_->ListAudit({.target = first.alert_id});
  ASSERT_EQ(audit->size(), 3u);  // created, resolved by alice, reopened by bob
  EXPECT_EQ((*audit)[1].actor, "alice");
  EXPECT_EQ((*audit)[1].comment, "test file");
}

TEST_F(AlertServiceTest, AStaleVersionIsRefusedByTheStore) {
  auto first = Ingest("dev-1", Det("d1", kT0));
  auto a = store_->GetAlert(first.alert_id);
  ASSERT_TRUE(a.ok());
  Alert stale = *a;
  ASSERT_TRUE(store_->UpdateAlert(*a).ok());
  EXPECT_EQ(store_->UpdateAlert(stale).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->GetAlert(first.alert_id)->version, a->version + 1);
}

}  // namespace
}  // namespace quell::server
