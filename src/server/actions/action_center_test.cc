#include "server/actions/action_center.h"

#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server {
namespace {

using nlohmann::json;

class RecordingDispatcher : public ActionDispatcher {
 public:
  void Deliver(const MachineAction& a) override { delivered.push_back(a.id); }
  void RequestCancel(const MachineAction& a) override { cancel_requested.push_back(a.id); }
  std::vector<std::string> delivered, cancel_requested;
};

class ActionCenterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_ + "/quell.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    ASSERT_TRUE(store_->CreateDevice({.id = "dev-1", .computer_dns_name = "h1"}).ok());
    ASSERT_TRUE(store_->CreateDevice({.id = "dev-2", .computer_dns_name = "h2"}).ok());
    center_ = std::make_unique<ActionCenter>(*store_, clock_,
                                             ActionCenterOptions{.action_timeout_ms = 60'000});
    center_->SetDispatcher(&dispatcher_);
  }

  Result<MachineAction> Request(const std::string& type, const std::string& machine = "dev-1",
                                json body = {{"Comment", "because"}}) {
    const ActionTypeSpec* spec = FindActionType(type);
    auto parsed = spec->parse_body(body);
    if (!parsed.ok()) return parsed.status();
    return center_->Create({.machine_id = machine,
                            .spec = spec,
                            .body = *parsed,
                            .requestor = "alice",
                            .request_source = "PublicApi"});
  }

  ActionStatus StatusOf(const std::string& id) { return store_->GetAction(id)->status; }

  // Runs `type` on dev-1 through to Succeeded; returns its id.
  std::string Succeeded(const std::string& type, json body = {{"Comment", "because"}}) {
    auto a = Request(type, "dev-1", std::move(body));
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_TRUE(center_->ApplyAgentReport("dev-1", {.action_id = a->id,
                                                    .event = ActionEvent::kAgentSucceeded})
                    .ok());
    clock_.Advance(1000);
    return a->id;
  }

  quell::testing::TempDir temp_dir_;  // declared first: removed after everything using it
  std::string dir_ = temp_dir_.path();
  std::unique_ptr<Store> store_;
  FakeClock clock_;
  RecordingDispatcher dispatcher_;
  std::unique_ptr<ActionCenter> center_;
};

TEST_F(ActionCenterTest, CreatePersistsAuditsAndDelivers) {
  auto a = Request("Isolate");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->status, ActionStatus::kPending);
  EXPECT_EQ(a->scope, "Full");
  EXPECT_EQ(a->computer_dns_name, "h1");
  EXPECT_EQ(a->requestor_comment, "because");
  EXPECT_EQ(dispatcher_.delivered, std::vector<std::string>{a->id});
  EXPECT_EQ(store_->GetAction(a->id)->expiration_time, clock_.Now() + 60'000);
  auto audit = store_->ListAudit({.target = a->id});
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].actor, "alice");
  EXPECT_EQ((*audit)[0].operation, "action.created");
}

TEST_F(ActionCenterTest, UnknownDeviceIsNotFound) {
  EXPECT_EQ(Request("Isolate", "nope").status().code(), StatusCode::kNotFound);
}

TEST_F(ActionCenterTest, SecondIsolationActionWhileOneIsOpenIsRefused) {
  ASSERT_TRUE(Request("Isolate").ok());
  auto second = Request("Unisolate");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "Action is already in progress");
  // Other devices and other conflict groups are not affected.
  EXPECT_TRUE(Request("Isolate", "dev-2").ok());
  EXPECT_TRUE(Request("DiagnosticNoop").ok());
}

TEST_F(ActionCenterTest, AgentReportsDriveTheLifecycleAndDeviceState) {
  auto a = Request("Isolate", "dev-1", {{"Comment", "c"}, {"IsolationType", "Selective"}});
  ASSERT_TRUE(center_->ApplyAgentReport("dev-1", {.action_id = a->id,
                                                  .event = ActionEvent::kAgentStarted,
                                                  .progress_percent = 10})
                  .ok());
  EXPECT_EQ(StatusOf(a->id), ActionStatus::kInProgress);
  ASSERT_TRUE(center_->ApplyAgentReport("dev-1", {.action_id = a->id,
                                                  .event = ActionEvent::kAgentSucceeded,
                                                  .progress_percent = 100,
                                                  .result_json = R"({"ok":true})"})
                  .ok());
  MachineAction done = store_->GetAction(a->id).value();
  EXPECT_EQ(done.status, ActionStatus::kSucceeded);
  EXPECT_EQ(done.result_json, R"({"ok":true})");
  EXPECT_EQ(store_->GetDevice("dev-1")->isolation, IsolationState::kSelective);
  // Now a release is allowed, and succeeds.
  auto release = Request("Unisolate");
  ASSERT_TRUE(release.ok());
  ASSERT_TRUE(center_->ApplyAgentReport(
                         "dev-1", {.action_id = release->id, .event = ActionEvent::kAgentSucceeded})
                  .ok());
  EXPECT_EQ(store_->GetDevice("dev-1")->isolation, IsolationState::kNotIsolated);
}

TEST_F(ActionCenterTest, RedeliveredFinalUpdateIsIgnored) {
  auto a = Request("DiagnosticNoop");
  AgentReport done{.action_id = a->id, .event = ActionEvent::kAgentSucceeded};
  ASSERT_TRUE(center_->ApplyAgentReport("dev-1", done).ok());
  ASSERT_TRUE(center_->ApplyAgentReport("dev-1", done).ok());
  ASSERT_TRUE(center_->ApplyAgentReport("dev-1", {.action_id = a->id,
                                                  .event = ActionEvent::kAgentFailed})
                  .ok());
  EXPECT_EQ(StatusOf(a->id), ActionStatus::kSucceeded);
  // Created + one transition; the duplicates left no trace.
  EXPECT_EQ(store_->ListAudit({.target = a->id})->size(), 2u);
}

TEST_F(ActionCenterTest, AnotherDeviceCannotReportOnAnAction) {
  auto a = Request("DiagnosticNoop");
  Status s = center_->ApplyAgentReport("dev-2", {.action_id = a->id,
                                                 .event = ActionEvent::kAgentSucceeded});
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusOf(a->id), ActionStatus::kPending);
}

TEST_F(ActionCenterTest, CancelPendingIsImmediate) {
  auto a = Request("Isolate");
  auto c = center_->Cancel(a->id, "bob", "wrong host");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, ActionStatus::kCancelled);
  EXPECT_EQ(c->cancellation_requestor, "bob");
  EXPECT_EQ(c->cancellation_comment, "wrong host");
  EXPECT_TRUE(dispatcher_.cancel_requested.empty());
  EXPECT_EQ(center_->Cancel(a->id, "bob", "again").status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(ActionCenterTest, CancelInProgressAsksTheAgent) {
  auto a = Request("Isolate");
  ASSERT_TRUE(center_->ApplyAgentReport("dev-1", {.action_id = a->id,
                                                  .event = ActionEvent::kAgentStarted})
                  .ok());
  auto c = center_->Cancel(a->id, "bob", "stop");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->status, ActionStatus::kInProgress);
  EXPECT_EQ(dispatcher_.cancel_requested, std::vector<std::string>{a->id});
  ASSERT_TRUE(center_->ApplyAgentReport("dev-1", {.action_id = a->id,
                                                  .event = ActionEvent::kAgentCancelled})
                  .ok());
  EXPECT_EQ(StatusOf(a->id), ActionStatus::kCancelled);
}

TEST_F(ActionCenterTest, OverdueActionsTimeOut) {
  auto a = Request("Isolate");
  auto b = Request("DiagnosticNoop");
  clock_.Advance(30'000);
  auto c = Request("DiagnosticNoop", "dev-2");
  EXPECT_EQ(center_->ExpireOverdue().value(), 0u);
  clock_.Advance(30'000);
  EXPECT_EQ(center_->ExpireOverdue().value(), 2u);
  EXPECT_EQ(StatusOf(a->id), ActionStatus::kTimeOut);
  EXPECT_EQ(StatusOf(b->id), ActionStatus::kTimeOut);
  EXPECT_EQ(StatusOf(c->id), ActionStatus::kPending);
  // A timed-out isolation no longer blocks a new one.
  EXPECT_TRUE(Request("Isolate").ok());
}

TEST_F(ActionCenterTest, ASucceededCollectFileMakesTheFileASample) {
  auto a = Request("CollectFile", "dev-1", {{"Comment", "c"}, {"Path", "/tmp/dropper"}});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  const std::string sha256(64, 'a'), sha1(40, 'b'), md5(32, 'c');
  ASSERT_TRUE(store_->PutActionArtifact({.action_id = a->id, .name = "file", .sha256 = sha256,
                                         .size = 4242, .created = clock_.Now()})
                  .ok());
  json result = {{"Path", "/tmp/dropper"}, {"FileName", "dropper"}, {"Size", 4242},
                 {"Sha256", sha256}, {"Sha1", sha1}, {"Md5", md5}, {"Artifact", "file"}};
  AgentReport done{.action_id = a->id, .event = ActionEvent::kAgentSucceeded,
                   .result_json = result.dump()};
  ASSERT_TRUE(center_->ApplyAgentReport("dev-1", done).ok());
  ASSERT_TRUE(center_->ApplyAgentReport("dev-1", done).ok()) << "a redelivered report is fine";

  Result<SampleFile> file = store_->GetSampleFile(sha256);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->size, 4242u);
  EXPECT_EQ(file->sha1, sha1);
  EXPECT_EQ(file->file_name, "dropper");
  Result<std::vector<FileCollection>> from = store_->ListFileCollections(sha256);
  ASSERT_TRUE(from.ok());
  ASSERT_EQ(from->size(), 1u);
  EXPECT_EQ((*from)[0].machine_id, "dev-1");
  EXPECT_EQ((*from)[0].path, "/tmp/dropper");
  EXPECT_EQ((*from)[0].requestor, "alice");
}

TEST_F(ActionCenterTest, ACollectFileResultNotBackedByItsUploadMakesNoSample) {
  auto a = Request("CollectFile", "dev-1", {{"Comment", "c"}, {"Path", "/tmp/x"}});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(store_->PutActionArtifact({.action_id = a->id, .name = "file",
                                         .sha256 = std::string(64, 'd'), .size = 1,
                                         .created = clock_.Now()})
                  .ok());
  json claim = {{"Sha256", std::string(64, 'a')}, {"Sha1", std::string(40, 'b')},
                {"Md5", std::string(32, 'c')}, {"Artifact", "file"}};
  Status s = center_->ApplyAgentReport(
      "dev-1", {.action_id = a->id, .event = ActionEvent::kAgentSucceeded,
                .result_json = claim.dump()});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(store_->GetSampleFile(std::string(64, 'a')).status().code(), StatusCode::kNotFound);
}

TEST_F(ActionCenterTest, OpenActionsAreRedeliveredOldestFirst) {
  auto a = Request("Isolate");
  clock_.Advance(1);
  auto b = Request("DiagnosticNoop");
  auto open = center_->OpenActionsFor("dev-1");
  ASSERT_EQ(open->size(), 2u);
  EXPECT_EQ((*open)[0].id, a->id);
  EXPECT_EQ((*open)[1].id, b->id);
}

}  // namespace
}  // namespace quell::server

namespace quell::server {
namespace {

TEST_F(ActionCenterTest, OffboardRevokesAndRecordsASucceededAction) {
  auto pending = Request("Isolate");
  auto off = center_->Offboard("dev-1", "admin", "decommissioned");
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_EQ(off->type, "Offboard");
  EXPECT_EQ(off->status, ActionStatus::kSucceeded);
  EXPECT_TRUE(store_->GetDevice("dev-1")->offboarded);
  EXPECT_EQ(StatusOf(pending->id), ActionStatus::kCancelled);
  EXPECT_EQ(Request("Isolate").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(center_->Offboard("dev-1", "admin", "again").status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(ActionCenterTest, UndoCreatesTheReverseActionOnceAndAuditsTheLink) {
  std::string isolate = Succeeded("Isolate");
  auto undo = center_->Undo(isolate, "bob", "false positive", "PublicApi");
  ASSERT_TRUE(undo.ok()) << undo.status().ToString();
  EXPECT_EQ(undo->type, "Unisolate");
  EXPECT_EQ(undo->machine_id, "dev-1");
  EXPECT_EQ(undo->requestor, "bob");
  auto audit = store_->ListAudit({.target = undo->id});
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].operation, "action.undo");
  EXPECT_EQ(json::parse((*audit)[0].details_json)["undoes"], isolate);
  // While the Unisolate is open (and after it succeeded) the isolation cannot be undone again.
  auto again = center_->Undo(isolate, "bob", "twice", "PublicApi");
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.status().message().find(undo->id), std::string::npos);
}

TEST_F(ActionCenterTest, UndoOfQuarantineNamesTheQuarantineAction) {
  std::string sha1(40, 'a');
  std::string quarantine = Succeeded("StopAndQuarantineFile",
                                     {{"Comment", "malware"}, {"Sha1", sha1}});
  auto undo = center_->Undo(quarantine, "bob", "benign after all", "PublicApi");
  ASSERT_TRUE(undo.ok()) << undo.status().ToString();
  EXPECT_EQ(undo->type, "RestoreQuarantinedFile");
  EXPECT_EQ(json::parse(undo->parameters_json), (json{{"QuarantineActionId", quarantine}}));
  EXPECT_EQ(center_->Undo(quarantine, "bob", "twice", "PublicApi").status().code(),
            StatusCode::kInvalidArgument);
  // Another quarantine on the same device is undone independently.
  std::string other = Succeeded("StopAndQuarantineFile", {{"Comment", "x"}, {"Sha1", sha1}});
  EXPECT_TRUE(center_->Undo(other, "bob", "also", "PublicApi").ok());
}

TEST_F(ActionCenterTest, UndoRefusesWhatCannotBeUndone) {
  EXPECT_EQ(center_->Undo("no-such-id", "bob", "c", "PublicApi").status().code(),
            StatusCode::kNotFound);
  std::string scan = Succeeded("RunAntiVirusScan", {{"Comment", "c"}, {"ScanType", "Quick"}});
  auto s = center_->Undo(scan, "bob", "c", "PublicApi");
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "a RunAntiVirusScan action cannot be undone");
  auto pending = Request("RestrictCodeExecution");
  ASSERT_TRUE(pending.ok());
  auto p = center_->Undo(pending->id, "bob", "c", "PublicApi");
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("is Pending"), std::string::npos);
}

TEST_F(ActionCenterTest, UndoOfAnOlderIsolationDoesNotReleaseANewerOne) {
  std::string first = Succeeded("Isolate");
  Succeeded("Unisolate");
  Succeeded("Isolate");
  auto undo = center_->Undo(first, "bob", "old", "PublicApi");
  EXPECT_EQ(undo.status().code(), StatusCode::kInvalidArgument);
}

TEST(ActionCatalogTest, StopAndQuarantineNeedsExactlyOneValidHash) {
  const ActionTypeSpec* spec = FindActionType("StopAndQuarantineFile");
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(FindActionRoute("stopandquarantinefile"), spec);
  auto ok = spec->parse_body({{"Comment", "c"}, {"Sha256", std::string(64, 'A')}, {"Path", "/tmp/x"}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->agent_parameters, (json{{"Sha256", std::string(64, 'a')}, {"Path", "/tmp/x"}}));
  EXPECT_FALSE(spec->parse_body({{"Comment", "c"}}).ok());
  EXPECT_FALSE(spec->parse_body({{"Comment", "c"}, {"Sha1", std::string(40, 'a')},
                                 {"Sha256", std::string(64, 'a')}}).ok());
  auto bad = spec->parse_body({{"Comment", "c"}, {"Sha1", "xyz"}});
  EXPECT_EQ(bad.status().message(), "'Sha1' must be 40 hex digits");
  EXPECT_FALSE(spec->parse_body({{"Comment", "c"}, {"Sha1", std::string(40, 'a')},
                                 {"Path", "relative"}}).ok());
}

TEST(ActionCatalogTest, RestoreNamesTheQuarantineActionOrTheHash) {
  const ActionTypeSpec* spec = FindActionType("RestoreQuarantinedFile");
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(spec->parse_body({{"Comment", "c"}, {"QuarantineActionId", "a1"}})->agent_parameters,
            (json{{"QuarantineActionId", "a1"}}));
  EXPECT_EQ(spec->parse_body({{"Comment", "c"}, {"Sha256", std::string(64, 'B')}})
                ->agent_parameters,
            (json{{"Sha256", std::string(64, 'b')}}));
  EXPECT_FALSE(spec->parse_body({{"Comment", "c"}}).ok());
  EXPECT_FALSE(spec->parse_body({{"Comment", "c"}, {"QuarantineActionId", "a1"},
                                 {"Sha256", std::string(64, 'b')}}).ok());
  EXPECT_FALSE(spec->parse_body({{"Comment", "c"}, {"Sha256", "short"}}).ok());
}

}  // namespace
}  // namespace quell::server
