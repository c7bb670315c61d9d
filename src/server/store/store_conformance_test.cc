// The one behavioural suite for Store, written against the interface only. Every
// implementation runs it: add its StoreFactory to AllStores() in store_factory_testing.h.

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <latch>
#include <thread>

#include "common/testing/temp_dir.h"
#include "server/store/store_factory_testing.h"
#include "server/store/store.h"

namespace quell::server {
namespace {

// Opens a fresh, empty store. `dir` is a private scratch directory for files it needs.
using testing::StoreFactory;

constexpr UnixMillis kT0 = 1'700'000'000'000;

Device MakeDevice(const std::string& id) {
  return {.id = id,
          .computer_dns_name = id + ".example.org",
          .os_platform = "Linux",
          .os_version = "Debian GNU/Linux 12 (bookworm)",
          .os_id = "debian",
          .kernel_version = "6.1.0-18-amd64",
          .architecture = "x86_64",
          .agent_version = "0.1.0",
          .ip_addresses = {"10.0.0.5", "fd00::5"},
          .last_ip_address = "10.0.0.5",
          .rbac_group_name = "servers",
          .first_seen = kT0,
          .last_seen = kT0 + 1,
          .cert_serial_hex = "0a1b2c",
          .offboarded = false,
          .isolation = IsolationState::kNotIsolated};
}

MachineAction MakeAction(const std::string& id, const std::string& machine_id, UnixMillis created,
                         ActionStatus status = ActionStatus::kPending,
                         const std::string& type = "Isolate") {
  return {.id = id,
          .type = type,
          .scope = type == "Isolate" ? "Full" : "",
          .requestor = "alice",
          .requestor_comment = "contain",
          .external_id = "ext-" + id,
          .request_source = "PublicApi",
          .title = type + " " + machine_id,
          .status = status,
          .machine_id = machine_id,
          .computer_dns_name = machine_id + ".example.org",
          .creation_time = created,
          .last_update_time = created,
          .expiration_time = created + 1000,
          .parameters_json = R"({"mode":"full"})"};
}

std::vector<std::string> Ids(const std::vector<MachineAction>& actions) {
  std::vector<std::string> ids;
  for (const MachineAction& a : actions) ids.push_back(a.id);
  return ids;
}

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    auto store = GetParam().open(dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  Store& store() { return *store_; }

  // Two devices and actions on them, for the listing tests.
  void InsertActionSet() {
    ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
    ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-b")).ok());
    for (const MachineAction& a :
         {MakeAction("act-1", "dev-a", kT0 + 10, ActionStatus::kSucceeded),
          MakeAction("act-2", "dev-a", kT0 + 20, ActionStatus::kPending, "RunAntiVirusScan"),
          MakeAction("act-3", "dev-b", kT0 + 30, ActionStatus::kInProgress),
          MakeAction("act-5", "dev-b", kT0 + 40, ActionStatus::kPending, "RunAntiVirusScan"),
          MakeAction("act-4", "dev-b", kT0 + 40, ActionStatus::kFailed)}) {
      ASSERT_TRUE(store().InsertAction(a).ok()) << a.id;
    }
  }

  quell::testing::TempDir temp_dir_;  // declared first: removed after everything using it
  std::string dir_ = temp_dir_.path();
  std::unique_ptr<Store> store_;
};

// ---- devices ----

TEST_P(StoreConformanceTest, DeviceRoundTripsEveryField) {
  Device device = MakeDevice("dev-1");
  device.offboarded = true;
  device.isolation = IsolationState::kSelective;
  ASSERT_TRUE(store().CreateDevice(device).ok());
  EXPECT_EQ(store().GetDevice("dev-1").value(), device);
}

TEST_P(StoreConformanceTest, DuplicateDeviceIsAlreadyExists) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-1")).ok());
  Device other = MakeDevice("dev-1");
  other.computer_dns_name = "impostor";
  EXPECT_EQ(store().CreateDevice(other).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store().GetDevice("dev-1")->computer_dns_name, "dev-1.example.org");
}

TEST_P(StoreConformanceTest, UnknownDeviceIsNotFound) {
  EXPECT_EQ(store().GetDevice("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store().UpdateDevice(MakeDevice("nope")).code(), StatusCode::kNotFound);
  EXPECT_EQ(store().TouchDevice("nope", kT0).code(), StatusCode::kNotFound);
  EXPECT_TRUE(store().ListDevices()->empty());
}

TEST_P(StoreConformanceTest, ListDevicesSortedById) {
  for (const char* id : {"dev-c", "dev-a", "dev-b"}) {
    ASSERT_TRUE(store().CreateDevice(MakeDevice(id)).ok());
  }
  auto devices = store().ListDevices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), 3u);
  EXPECT_EQ((*devices)[0].id, "dev-a");
  EXPECT_EQ((*devices)[1].id, "dev-b");
  EXPECT_EQ((*devices)[2], MakeDevice("dev-c"));
}

TEST_P(StoreConformanceTest, UpdateDeviceReplacesEveryField) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-1")).ok());
  Device updated = MakeDevice("dev-1");
  updated.computer_dns_name = "renamed";
  updated.ip_addresses = {"192.168.1.9"};
  updated.last_ip_address = "192.168.1.9";
  updated.cert_serial_hex = "ff";
  updated.isolation = IsolationState::kFull;
  updated.last_seen = kT0 + 99;
  ASSERT_TRUE(store().UpdateDevice(updated).ok());
  EXPECT_EQ(store().GetDevice("dev-1").value(), updated);
}

TEST_P(StoreConformanceTest, TouchDeviceMovesLastSeenForwardOnly) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-1")).ok());
  ASSERT_TRUE(store().TouchDevice("dev-1", kT0 + 500).ok());
  EXPECT_EQ(store().GetDevice("dev-1")->last_seen, kT0 + 500);
  ASSERT_TRUE(store().TouchDevice("dev-1", kT0 + 100).ok());
  EXPECT_EQ(store().GetDevice("dev-1")->last_seen, kT0 + 500);
  EXPECT_EQ(store().GetDevice("dev-1")->first_seen, kT0);
}

TEST_P(StoreConformanceTest, TouchDevicesWritesABatchForwardOnlySkippingUnknown) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-1")).ok());
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-2")).ok());
  ASSERT_TRUE(store().TouchDevice("dev-2", kT0 + 900).ok());
  ASSERT_TRUE(
      store().TouchDevices({{"dev-1", kT0 + 500}, {"gone", kT0 + 500}, {"dev-2", kT0 + 100}}).ok());
  EXPECT_EQ(store().GetDevice("dev-1")->last_seen, kT0 + 500);
  EXPECT_EQ(store().GetDevice("dev-2")->last_seen, kT0 + 900);
  EXPECT_TRUE(store().TouchDevices({}).ok());
}

// ---- API tokens ----

TEST_P(StoreConformanceTest, ApiTokenFoundBySecretHash) {
  ApiToken token{.id = "tok-1",
                 .name = "soar",
                 .role = Role::kResponder,
                 .secret_sha256 = std::string(64, 'a'),
                 .created = kT0};
  ASSERT_TRUE(store().CreateApiToken(token).ok());
  EXPECT_EQ(store().FindApiTokenBySecretHash(std::string(64, 'a')).value(), token);
  EXPECT_EQ(store().FindApiTokenBySecretHash(std::string(64, 'b')).status().code(),
            StatusCode::kNotFound);

  ApiToken same_secret = token;
  same_secret.id = "tok-2";
  EXPECT_EQ(store().CreateApiToken(same_secret).code(), StatusCode::kAlreadyExists);
}

TEST_P(StoreConformanceTest, RevokedApiTokenIsFoundAsRevoked) {
  ASSERT_TRUE(store()
                  .CreateApiToken({.id = "tok-1",
                                   .name = "old",
                                   .role = Role::kAdmin,
                                   .secret_sha256 = "h1",
                                   .created = kT0,
                                   .revoked = true})
                  .ok());
  ASSERT_TRUE(store()
                  .CreateApiToken({.id = "tok-2",
                                   .name = "cli",
                                   .role = Role::kViewer,
                                   .secret_sha256 = "h2",
                                   .created = kT0})
                  .ok());
  EXPECT_TRUE(store().FindApiTokenBySecretHash("h1")->revoked);
  EXPECT_EQ(store().FindApiTokenBySecretHash("h1")->role, Role::kAdmin);
  EXPECT_FALSE(store().FindApiTokenBySecretHash("h2")->revoked);

  ASSERT_TRUE(store().RevokeApiToken("tok-2").ok());
  EXPECT_TRUE(store().FindApiTokenBySecretHash("h2")->revoked);
  EXPECT_EQ(store().RevokeApiToken("tok-9").code(), StatusCode::kNotFound);
}

// ---- enrollment tokens ----

TEST_P(StoreConformanceTest, EnrollmentTokenConsumedUntilUsedUp) {
  ASSERT_TRUE(store()
                  .CreateEnrollmentToken({.id = "enr-1",
                                          .secret_sha256 = "e1",
                                          .uses_left = 2,
                                          .expires = kT0 + 1000,
                                          .created = kT0})
                  .ok());
  EXPECT_TRUE(store().ConsumeEnrollmentToken("e1", kT0).ok());
  EXPECT_TRUE(store().ConsumeEnrollmentToken("e1", kT0).ok());
  EXPECT_EQ(store().ConsumeEnrollmentToken("e1", kT0).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(store().ConsumeEnrollmentToken("e2", kT0).code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, EnrollmentTokenExpiresAtItsExpiryTime) {
  ASSERT_TRUE(store()
                  .CreateEnrollmentToken({.id = "enr-1",
                                          .secret_sha256 = "e1",
                                          .uses_left = 5,
                                          .expires = kT0 + 1000,
                                          .created = kT0})
                  .ok());
  EXPECT_EQ(store().ConsumeEnrollmentToken("e1", kT0 + 1000).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(store().ConsumeEnrollmentToken("e1", kT0 + 999).ok());
}

TEST_P(StoreConformanceTest, ConcurrentEnrollmentConsumesExactlyUsesLeft) {
  ASSERT_TRUE(store()
                  .CreateEnrollmentToken({.id = "enr-1",
                                          .secret_sha256 = "e1",
                                          .uses_left = 5,
                                          .expires = kT0 + 1000,
                                          .created = kT0})
                  .ok());
  constexpr int kThreads = 8;
  std::atomic<int> granted = 0;
  std::atomic<int> denied = 0;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int attempt = 0; attempt < 3; ++attempt) {
        Status status = store().ConsumeEnrollmentToken("e1", kT0);
        if (status.ok()) ++granted;
        if (status.code() == StatusCode::kPermissionDenied) ++denied;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(granted, 5);
  EXPECT_EQ(denied, kThreads * 3 - 5);
}

// ---- actions ----

TEST_P(StoreConformanceTest, ActionRoundTripsEveryField) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-1")).ok());
  MachineAction action = MakeAction("act-1", "dev-1", kT0, ActionStatus::kCancelled);
  action.cancellation_time = kT0 + 5;
  action.cancellation_requestor = "bob";
  action.cancellation_comment = "false positive";
  action.result_json = R"({"rules":3})";
  action.status_message = "cancelled by bob";
  action.progress_percent = 40;
  ASSERT_TRUE(store().InsertAction(action).ok());
  EXPECT_EQ(store().GetAction("act-1").value(), action);

  ASSERT_TRUE(store().InsertAction(MakeAction("act-2", "dev-1", kT0)).ok());
  EXPECT_EQ(store().GetAction("act-2")->cancellation_time, std::nullopt);
}

TEST_P(StoreConformanceTest, InsertActionRefusesDuplicatesAndUnknownDevices) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-1")).ok());
  ASSERT_TRUE(store().InsertAction(MakeAction("act-1", "dev-1", kT0)).ok());
  EXPECT_EQ(store().InsertAction(MakeAction("act-1", "dev-1", kT0 + 1)).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store().InsertAction(MakeAction("act-2", "dev-9", kT0)).code(), StatusCode::kNotFound);
  EXPECT_EQ(store().GetAction("act-2").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store().GetAction("act-1")->creation_time, kT0);
}

TEST_P(StoreConformanceTest, ListActionsNewestFirstThenId) {
  InsertActionSet();
  EXPECT_EQ(Ids(store().ListActions({}).value()),
            (std::vector<std::string>{"act-4", "act-5", "act-3", "act-2", "act-1"}));
}

TEST_P(StoreConformanceTest, ListActionsFiltersByEachField) {
  InsertActionSet();
  EXPECT_EQ(Ids(store().ListActions({.status = ActionStatus::kPending}).value()),
            (std::vector<std::string>{"act-5", "act-2"}));
  EXPECT_EQ(Ids(store().ListActions({.machine_id = "dev-a"}).value()),
            (std::vector<std::string>{"act-2", "act-1"}));
  EXPECT_EQ(Ids(store().ListActions({.type = "Isolate"}).value()),
            (std::vector<std::string>{"act-4", "act-3", "act-1"}));
  EXPECT_EQ(Ids(store()
                    .ListActions({.status = ActionStatus::kPending,
                                  .machine_id = "dev-b",
                                  .type = "RunAntiVirusScan"})
                    .value()),
            (std::vector<std::string>{"act-5"}));
  EXPECT_TRUE(store().ListActions({.machine_id = "dev-z"})->empty());
}

TEST_P(StoreConformanceTest, ListActionsPagesWithSkipAndTop) {
  InsertActionSet();
  EXPECT_EQ(Ids(store().ListActions({.skip = 1, .top = 2}).value()),
            (std::vector<std::string>{"act-5", "act-3"}));
  EXPECT_EQ(Ids(store().ListActions({.skip = 4, .top = 2}).value()),
            (std::vector<std::string>{"act-1"}));
  EXPECT_TRUE(store().ListActions({.skip = 5})->empty());
  EXPECT_TRUE(store().ListActions({.top = 0})->empty());
}

TEST_P(StoreConformanceTest, UpdateActionWritesWhenStatusMatches) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-1")).ok());
  ASSERT_TRUE(store().InsertAction(MakeAction("act-1", "dev-1", kT0)).ok());
  MachineAction running = store().GetAction("act-1").value();
  running.status = ActionStatus::kInProgress;
  running.progress_percent = 50;
  running.status_message = "halfway";
  running.last_update_time = kT0 + 7;
  ASSERT_TRUE(store().UpdateAction(running, ActionStatus::kPending).ok());
  EXPECT_EQ(store().GetAction("act-1").value(), running);
}

TEST_P(StoreConformanceTest, UpdateActionWithStaleStatusWritesNothing) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-1")).ok());
  MachineAction original = MakeAction("act-1", "dev-1", kT0, ActionStatus::kInProgress);
  ASSERT_TRUE(store().InsertAction(original).ok());

  MachineAction cancelled = original;
  cancelled.status = ActionStatus::kCancelled;
  cancelled.cancellation_time = kT0 + 3;
  EXPECT_EQ(store().UpdateAction(cancelled, ActionStatus::kPending).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store().GetAction("act-1").value(), original);

  MachineAction unknown = MakeAction("act-9", "dev-1", kT0);
  EXPECT_EQ(store().UpdateAction(unknown, ActionStatus::kPending).code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, ListOpenActionsOfOneDeviceOldestFirst) {
  InsertActionSet();
  EXPECT_EQ(Ids(store().ListOpenActions("dev-b").value()),
            (std::vector<std::string>{"act-3", "act-5"}));
  EXPECT_EQ(Ids(store().ListOpenActions("dev-a").value()), (std::vector<std::string>{"act-2"}));
  EXPECT_TRUE(store().ListOpenActions("dev-z")->empty());
}

TEST_P(StoreConformanceTest, ListExpiredActionsOnlyOpenAndDue) {
  InsertActionSet();  // each expires 1000 ms after its creation
  EXPECT_TRUE(store().ListExpiredActions(kT0 + 1019).value().empty());
  EXPECT_EQ(Ids(store().ListExpiredActions(kT0 + 1030).value()),
            (std::vector<std::string>{"act-2", "act-3"}));
  EXPECT_EQ(Ids(store().ListExpiredActions(kT0 + 5000).value()),
            (std::vector<std::string>{"act-2", "act-3", "act-5"}));
}

TEST_P(StoreConformanceTest, ActionWritesCarryTheirAuditEntryInOneStep) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
  MachineAction action = MakeAction("act-1", "dev-a", kT0, ActionStatus::kPending);
  AuditEntry created{.time = kT0, .actor = "alice", .operation = "action.created",
                     .target = "act-1"};
  ASSERT_TRUE(store().InsertAction(action, &created).ok());
  action.status = ActionStatus::kSucceeded;
  AuditEntry moved{.time = kT0 + 1, .actor = "agent", .operation = "action.transition",
                   .target = "act-1"};
  // A stale expected status writes neither the action nor its audit entry.
  EXPECT_EQ(store().UpdateAction(action, ActionStatus::kInProgress, &moved).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store().ListAudit({.target = "act-1"})->size(), 1u);
  ASSERT_TRUE(store().UpdateAction(action, ActionStatus::kPending, &moved).ok());
  auto audit = store().ListAudit({.target = "act-1"}).value();
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[1].operation, "action.transition");
  // A duplicate insert leaves no audit entry behind.
  EXPECT_EQ(store().InsertAction(action, &created).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store().ListAudit({.target = "act-1"})->size(), 2u);
}

TEST_P(StoreConformanceTest, CountsActionsByStatus) {
  EXPECT_TRUE(store().CountActionsByStatus().value().empty());
  InsertActionSet();
  std::map<ActionStatus, int64_t> expected = {{ActionStatus::kSucceeded, 1},
                                              {ActionStatus::kPending, 2},
                                              {ActionStatus::kInProgress, 1},
                                              {ActionStatus::kFailed, 1}};
  EXPECT_EQ(store().CountActionsByStatus().value(), expected);
}

// ---- audit ----

TEST_P(StoreConformanceTest, AuditAppendsWithIncreasingSeqAndListsByTarget) {
  for (const char* target : {"act-1", "dev-1", "act-1"}) {
    ASSERT_TRUE(store()
                    .AppendAudit({.time = kT0,
                                  .actor = "alice",
                                  .operation = "action.created",
                                  .target = target,
                                  .comment = "why",
                                  .details_json = R"({"k":1})"})
                    .ok());
  }
  auto all = store().ListAudit({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_GT((*all)[0].seq, 0);
  EXPECT_LT((*all)[0].seq, (*all)[1].seq);
  EXPECT_LT((*all)[1].seq, (*all)[2].seq);
  EXPECT_EQ((*all)[1].target, "dev-1");
  EXPECT_EQ((*all)[2].details_json, R"({"k":1})");
  EXPECT_EQ((*all)[2].actor, "alice");

  auto act1 = store().ListAudit({.target = "act-1"});
  ASSERT_EQ(act1->size(), 2u);
  EXPECT_EQ((*act1)[0], (*all)[0]);
  EXPECT_EQ((*act1)[1], (*all)[2]);
  EXPECT_EQ(store().ListAudit({.target = "act-1", .skip = 1, .top = 5}).value(),
            std::vector<AuditEntry>{(*all)[2]});
  EXPECT_TRUE(store().ListAudit({.target = "nope"})->empty());
}

// ---- alerts ----

Alert MakeAlert(const std::string& id, const std::string& machine_id, UnixMillis last_activity,
                AlertSeverity severity = AlertSeverity::kMedium,
                const std::string& dedup_key = "key") {
  return {.id = id,
          .title = "Alert " + id,
          .description = "what happened",
          .severity = severity,
          .status = AlertStatus::kNew,
          .classification = "",
          .determination = "",
          .category = "Malware",
          .detection_source = "Antivirus",
          .detector_id = "quell.av.clamav",
          .threat_name = "Eicar-Signature",
          .mitre_techniques = {"T1204.002", "T1059"},
          .machine_id = machine_id,
          .computer_dns_name = machine_id + ".example.org",
          .first_activity = last_activity - 5,
          .last_activity = last_activity,
          .created = last_activity + 1,
          .last_update = last_activity + 2,
          .resolved = std::nullopt,
          .assigned_to = "",
          .comments = {},
          .evidence_json = R"([{"@odata.type":"#microsoft.graph.security.fileEvidence"}])",
          .event_count = 1,
          .dedup_key = dedup_key,
          .action_id = "act-9",
          .incident_id = "",
          .version = 0};
}

TEST_P(StoreConformanceTest, AlertRoundTripsEveryFieldAndRecordsItsDetection) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
  Alert a = MakeAlert("al-1", "dev-a", kT0);
  a.resolved = kT0 + 9;
  a.status = AlertStatus::kResolved;
  a.classification = "TruePositive";
  a.determination = "Malware";
  a.assigned_to = "alice";
  a.comments = {{.comment = "seen", .created_by = "alice", .created = kT0 + 3}};
  a.incident_id = "inc-1";
  EXPECT_FALSE(store().IsDetectionRecorded("det-1").value());
  ASSERT_TRUE(store().RecordDetection("det-1", a, /*create=*/true).ok());
  EXPECT_TRUE(store().IsDetectionRecorded("det-1").value());
  a.version = 1;  // set by the store on insert
  EXPECT_EQ(store().GetAlert("al-1").value(), a);
  EXPECT_EQ(store().GetAlert("nope").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, RecordDetectionIsAllOrNothing) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
  ASSERT_TRUE(store().RecordDetection("det-1", MakeAlert("al-1", "dev-a", kT0), true).ok());
  // The same detection again: refused, and the second alert is not written either.
  EXPECT_EQ(store().RecordDetection("det-1", MakeAlert("al-2", "dev-a", kT0), true).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store().GetAlert("al-2").status().code(), StatusCode::kNotFound);
  // An update that carries an already recorded detection writes nothing.
  Alert updated = store().GetAlert("al-1").value();
  updated.event_count = 2;
  EXPECT_EQ(store().RecordDetection("det-1", updated, false).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store().GetAlert("al-1")->event_count, 1);
  // A new detection updates it and bumps the version.
  ASSERT_TRUE(store().RecordDetection("det-2", updated, false).ok());
  EXPECT_EQ(store().GetAlert("al-1")->event_count, 2);
  EXPECT_EQ(store().GetAlert("al-1")->version, 2);
  // A stale version writes nothing, and does not record the detection.
  EXPECT_EQ(store().RecordDetection("det-3", updated, false).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_FALSE(store().IsDetectionRecorded("det-3").value());
  // Unknown device.
  EXPECT_EQ(store().RecordDetection("det-4", MakeAlert("al-3", "dev-x", kT0), true).code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(store().IsDetectionRecorded("det-4").value());
}

TEST_P(StoreConformanceTest, UpdateAlertChecksTheVersion) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
  ASSERT_TRUE(store().RecordDetection("det-1", MakeAlert("al-1", "dev-a", kT0), true).ok());
  Alert a = store().GetAlert("al-1").value();
  Alert stale = a;
  a.assigned_to = "bob";
  ASSERT_TRUE(store().UpdateAlert(a).ok());
  EXPECT_EQ(store().GetAlert("al-1")->assigned_to, "bob");
  stale.assigned_to = "carol";
  EXPECT_EQ(store().UpdateAlert(stale).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store().GetAlert("al-1")->assigned_to, "bob");
  Alert missing = MakeAlert("nope", "dev-a", kT0);
  EXPECT_EQ(store().UpdateAlert(missing).code(), StatusCode::kNotFound);
}

TEST_P(StoreConformanceTest, FindOpenAlertByDeviceKeyWindowAndStatus) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-b")).ok());
  ASSERT_TRUE(store().RecordDetection("d1", MakeAlert("old", "dev-a", kT0), true).ok());
  ASSERT_TRUE(store().RecordDetection("d2", MakeAlert("new", "dev-a", kT0 + 100), true).ok());
  Alert resolved = MakeAlert("resolved", "dev-a", kT0 + 200);
  resolved.status = AlertStatus::kResolved;
  ASSERT_TRUE(store().RecordDetection("d3", resolved, true).ok());

  auto found = store().FindOpenAlert("dev-a", "key", kT0);
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->id, "new");  // the most recently active open one
  EXPECT_EQ(store().FindOpenAlert("dev-a", "key", kT0 + 100).value()->id, "new");
  EXPECT_FALSE(store().FindOpenAlert("dev-a", "key", kT0 + 101).value().has_value());
  EXPECT_FALSE(store().FindOpenAlert("dev-a", "other", kT0).value().has_value());
  EXPECT_FALSE(store().FindOpenAlert("dev-b", "key", kT0).value().has_value());
}

TEST_P(StoreConformanceTest, ListAlertsFiltersOrdersAndPages) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-b")).ok());
  Alert low = MakeAlert("low", "dev-a", kT0 + 30, AlertSeverity::kLow);
  Alert high = MakeAlert("high", "dev-a", kT0 + 10, AlertSeverity::kHigh);
  Alert info = MakeAlert("info", "dev-b", kT0 + 20, AlertSeverity::kInformational);
  info.created = kT0 + 100;  // created last, active in the middle
  info.status = AlertStatus::kInProgress;
  int n = 0;
  for (const Alert& a : {low, high, info}) {
    ASSERT_TRUE(store().RecordDetection("d" + std::to_string(++n), a, true).ok());
  }
  auto ids = [this](const AlertFilter& f) {
    std::vector<std::string> out;
    Result<std::vector<Alert>> alerts = store().ListAlerts(f);
    EXPECT_TRUE(alerts.ok()) << alerts.status().ToString();
    if (!alerts.ok()) return out;
    for (const Alert& a : *alerts) out.push_back(a.id);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({}), (V{"low", "info", "high"}));  // lastActivity, newest first
  EXPECT_EQ(ids({.descending = false}), (V{"high", "info", "low"}));
  EXPECT_EQ(ids({.order_by = AlertOrder::kSeverity}), (V{"high", "low", "info"}));
  EXPECT_EQ(ids({.order_by = AlertOrder::kSeverity, .descending = false}),
            (V{"info", "low", "high"}));
  EXPECT_EQ(ids({.order_by = AlertOrder::kCreated}), (V{"info", "low", "high"}));
  EXPECT_EQ(ids({.status = AlertStatus::kInProgress}), (V{"info"}));
  EXPECT_EQ(ids({.severity = AlertSeverity::kHigh}), (V{"high"}));
  EXPECT_EQ(ids({.machine_id = "dev-a"}), (V{"low", "high"}));
  EXPECT_EQ(ids({.skip = 1, .top = 1}), (V{"info"}));
}

// ---- file sightings ----

TEST_P(StoreConformanceTest, FileSightingsUpsertPerDeviceHashAndPathAndFindByAnyHash) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-b")).ok());
  std::string sha256(64, 'a'), sha1(40, 'b'), md5(32, 'c');
  FileSighting a{.device_id = "dev-a", .sha256 = sha256, .sha1 = sha1, .md5 = md5,
                 .path = "/tmp/x", .source = "exec", .first_seen = kT0, .last_seen = kT0};
  FileSighting b = a;
  b.device_id = "dev-b";
  b.path = "/opt/x y\nz";
  b.first_seen = b.last_seen = kT0 + 5;
  ASSERT_TRUE(store().RecordFileSightings({a, b}).ok());
  // Seen again later by a scan: one row, first_seen kept.
  FileSighting again = a;
  again.source = "scan";
  again.first_seen = again.last_seen = kT0 + 10;
  ASSERT_TRUE(store().RecordFileSightings({again}).ok());

  auto by256 = store().ListFileSightings(sha256, 100);
  ASSERT_TRUE(by256.ok()) << by256.status().ToString();
  FileSighting merged = a;
  merged.source = "scan";
  merged.last_seen = kT0 + 10;
  EXPECT_EQ(*by256, (std::vector<FileSighting>{merged, b}));
  EXPECT_EQ(*store().ListFileSightings(sha1, 100), *by256);
  EXPECT_EQ(*store().ListFileSightings(md5, 100), *by256);
  EXPECT_EQ(store().ListFileSightings(md5, 1)->size(), 1u);
  EXPECT_TRUE(store().ListFileSightings(std::string(64, 'f'), 100)->empty());
  // A sighting for an unknown device is refused, and the batch with it writes nothing.
  FileSighting stray = a;
  stray.device_id = "nope";
  stray.path = "/other";
  EXPECT_FALSE(store().RecordFileSightings({stray}).ok());
}

INSTANTIATE_TEST_SUITE_P(
    Stores, StoreConformanceTest,
    testing::AllStores(), testing::StoreName);

}  // namespace
}  // namespace quell::server
