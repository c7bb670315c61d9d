// The service around the sandbox, with a stand-in quell-sandbox: a shell script that answers
// as the real binary does (progress on stderr, a report file, an exit status). The real
// binary is exercised by tests/e2e/test_70_sandbox.py and test_72_deep_analysis.py.
#include "server/analysis/deep_analysis_service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"
#include "server/alerts/alert_service.h"
#include "server/blobs/blob_store.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server {
namespace {

using namespace std::chrono_literals;

// Writes the report given as `report_json` where --report says, after a progress line.
std::string FakeSandbox(const std::string& report_json, int exit_code = 0,
                        const std::string& error = "") {
  return "#!/bin/sh\n"
         "while [ $# -gt 0 ]; do [ \"$1\" = --report ] && report=\"$2\"; shift; done\n"
         "echo 'sandbox: sample running' >&2\n" +
         (exit_code == 0 ? "cat > \"$report\" <<'EOF'\n" + report_json + "\nEOF\n"
                         : "echo 'sandbox: error: " + error + "' >&2\n") +
         "exit " + std::to_string(exit_code) + "\n";
}

class DeepAnalysisServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(OpenSqliteStore(dir_ + "/q.db")).value();
    blobs_ = std::move(BlobStore::Open(dir_ + "/blobs")).value();
    actions_ = std::make_unique<ActionCenter>(*store_, SystemClock::Instance());
    alerts_ = std::make_unique<AlertService>(*store_, SystemClock::Instance());
    ASSERT_TRUE(store_->CreateDevice({.id = "m1", .computer_dns_name = "h1"}).ok());
  }

  void StartWith(const std::string& script) {
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/sandbox", script, 0755).ok());
    service_ = std::make_unique<DeepAnalysisService>(
        *store_, *blobs_, *actions_, alerts_.get(), SystemClock::Instance(),
        DeepAnalysisOptions{.sandbox_binary = dir_ + "/sandbox",
                            .work_dir = dir_ + "/analysis",
                            .poll_interval = 20ms});
    ASSERT_TRUE(service_->Start().ok());
  }

  // A sample the server holds, collected from m1.
  std::string Stored(const std::string& content) {
    BlobInfo blob = *blobs_->Put(content);
    SampleFile file{.sha256 = blob.sha256, .sha1 = std::string(40, '1'),
                    .md5 = std::string(32, '2'), .size = blob.size, .file_name = "s.sh"};
    EXPECT_TRUE(store_->RecordFileCollection(file, {.sha256 = blob.sha256, .action_id = "c-" + blob.sha256,
                                                    .machine_id = "m1", .path = "/tmp/s.sh"})
                    .ok());
    return blob.sha256;
  }

  DeepAnalysis WaitFinal(const std::string& sha256) {
    for (int i = 0; i < 500; ++i) {
      auto list = store_->ListDeepAnalyses(sha256);
      if (list.ok() && !list->empty() && IsFinal(list->front().status)) return list->front();
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "the analysis of " << sha256 << " did not finish";
    return {};
  }

  quell::testing::TempDir temp_dir_;
  std::string dir_ = temp_dir_.path();
  std::unique_ptr<Store> store_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<ActionCenter> actions_;
  std::unique_ptr<AlertService> alerts_;
  std::unique_ptr<DeepAnalysisService> service_;
};

TEST_F(DeepAnalysisServiceTest, AStoredSampleIsDetonatedAndItsReportKept) {
  StartWith(FakeSandbox(R"({"verdict": "suspicious", "observables": {}})"));
  const std::string sha = Stored("echo hi");

  Result<DeepAnalysis> asked = service_->Request({.sha256 = sha, .requestor = "alice", .comment = "c"});
  ASSERT_TRUE(asked.ok()) << asked.status().ToString();
  EXPECT_TRUE(asked->collect_action_id.empty());

  DeepAnalysis done = WaitFinal(sha);
  EXPECT_EQ(done.status, ActionStatus::kSucceeded) << done.error;
  EXPECT_EQ(done.verdict, "suspicious");
  EXPECT_EQ(nlohmann::json::parse(done.report_json)["verdict"], "suspicious");
  EXPECT_EQ(done.requestor, "alice");
}

TEST_F(DeepAnalysisServiceTest, ASecondRequestWhileOneIsOpenIsRefused) {
  StartWith("#!/bin/sh\nsleep 5\nexit 1\n");
  const std::string sha = Stored("x");
  ASSERT_TRUE(service_->Request({.sha256 = sha, .requestor = "a", .comment = "c"}).ok());
  Result<DeepAnalysis> again = service_->Request({.sha256 = sha, .requestor = "a", .comment = "c"});
  EXPECT_EQ(again.status().message(), kAnalysisInProgress);
}

TEST_F(DeepAnalysisServiceTest, TheSandboxsErrorBecomesTheReasonItFailed) {
  StartWith(FakeSandbox("", 2, "unsupported file type: a.png is neither"));
  const std::string sha = Stored("\x89PNG");
  ASSERT_TRUE(service_->Request({.sha256 = sha, .requestor = "a", .comment = "c"}).ok());
  DeepAnalysis done = WaitFinal(sha);
  EXPECT_EQ(done.status, ActionStatus::kFailed);
  EXPECT_NE(done.error.find("unsupported file type: a.png"), std::string::npos) << done.error;
}

TEST_F(DeepAnalysisServiceTest, ASampleOnlySeenOnADeviceIsCollectedFirstAndAFailedCollectionFailsIt) {
  StartWith(FakeSandbox(R"({"verdict": "noThreatsFound"})"));
  const std::string sha(64, 'b');
  ASSERT_TRUE(store_->RecordFileSightings({{.device_id = "m1", .sha256 = sha, .path = "/opt/x",
                                            .source = "exec", .first_seen = 1, .last_seen = 1}})
                  .ok());
  Result<DeepAnalysis> asked = service_->Request({.sha256 = sha, .requestor = "a", .comment = "c"});
  ASSERT_TRUE(asked.ok()) << asked.status().ToString();
  ASSERT_FALSE(asked->collect_action_id.empty());
  EXPECT_EQ(asked->stage, "collecting the sample from h1");
  Result<MachineAction> collect = store_->GetAction(asked->collect_action_id);
  ASSERT_TRUE(collect.ok());
  EXPECT_EQ(collect->type, "CollectFile");
  nlohmann::json params = nlohmann::json::parse(collect->parameters_json);
  EXPECT_EQ(params["Path"], "/opt/x");
  EXPECT_EQ(params["Sha256"], sha);

  ASSERT_TRUE(actions_->ApplyAgentReport("m1", {.action_id = collect->id,
                                                .event = ActionEvent::kAgentFailed,
                                                .message = "/opt/x is a fifo"})
                  .ok());
  DeepAnalysis done = WaitFinal(sha);
  EXPECT_EQ(done.status, ActionStatus::kFailed);
  EXPECT_EQ(done.error, "collecting the sample failed: /opt/x is a fifo");
}

TEST_F(DeepAnalysisServiceTest, AFileNeitherStoredNorSeenIsNotFound) {
  StartWith(FakeSandbox("{}"));
  Result<DeepAnalysis> asked =
      service_->Request({.sha256 = std::string(64, 'c'), .requestor = "a", .comment = "c"});
  EXPECT_EQ(asked.status().code(), StatusCode::kNotFound);
}

TEST_F(DeepAnalysisServiceTest, AnObservableABlockIndicatorNamesRaisesAnAlertOnTheSourceDevice) {
  StartWith(FakeSandbox(
      R"({"verdict": "malicious", "observables": {"domains": ["c2.evil.example"]}})"));
  ASSERT_TRUE(store_->PutIndicators({{.id = "i1", .type = IndicatorType::kDomainName,
                                      .value = "evil.example", .action = IndicatorAction::kBlock,
                                      .severity = AlertSeverity::kHigh, .title = "C2"}},
                                    AuditEntry{.actor = "test", .operation = "indicator.put"})
                  .ok());
  const std::string sha = Stored("beacon");
  ASSERT_TRUE(service_->Request({.sha256 = sha, .requestor = "a", .comment = "c"}).ok());
  ASSERT_EQ(WaitFinal(sha).status, ActionStatus::kSucceeded);

  auto alerts = store_->ListAlerts({.machine_id = "m1"});
  ASSERT_TRUE(alerts.ok());
  ASSERT_EQ(alerts->size(), 1u);
  EXPECT_EQ((*alerts)[0].detection_source, "DeepAnalysis");
  EXPECT_EQ((*alerts)[0].severity, AlertSeverity::kHigh);
  EXPECT_NE((*alerts)[0].evidence_json.find("c2.evil.example"), std::string::npos);
}

TEST_F(DeepAnalysisServiceTest, AnAnalysisInterruptedByARestartRunsAgain) {
  const std::string sha = Stored("again");
  ASSERT_TRUE(store_->PutDeepAnalysis({.id = "a1", .sha256 = sha,
                                       .status = ActionStatus::kInProgress, .requestor = "a",
                                       .stage = "sample running", .requested = 1, .updated = 1})
                  .ok());
  StartWith(FakeSandbox(R"({"verdict": "noThreatsFound"})"));
  DeepAnalysis done = WaitFinal(sha);
  EXPECT_EQ(done.id, "a1");
  EXPECT_EQ(done.status, ActionStatus::kSucceeded);
  EXPECT_EQ(done.verdict, "noThreatsFound");
}

}  // namespace
}  // namespace quell::server
