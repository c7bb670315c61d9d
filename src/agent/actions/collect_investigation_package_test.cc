#include "agent/actions/collect_investigation_package.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <future>
#include <latch>

#include "common/files.h"
#include "common/hash.h"

namespace quell::agent {
namespace {

namespace fs = std::filesystem;

class CollectInvestigationPackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("quell-collect-action-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "server");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A sender that "uploads" by copying into dir_/server, as the server would store it.
  ArtifactSender CopyingSender() {
    return [this](const std::string& action_id, const std::string& name, const std::string& path,
                  std::stop_token, const std::function<void(uint64_t, uint64_t)>& progress)
               -> Result<SentArtifact> {
      QUELL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
      const fs::path stored = dir_ / "server" / (action_id + "." + name);
      QUELL_RETURN_IF_ERROR(WriteFileAtomic(stored.string(), bytes));
      progress(bytes.size(), bytes.size());
      return SentArtifact{Sha256Hex(bytes), bytes.size()};
    };
  }

  CollectPackageOptions Options(collect::CollectLimits limits = {}) {
    return {.work_dir = (dir_ / "work").string(), .computer_name = "lab-1", .limits = limits,
            .sources = {.root = "/", .proc_root = "/proc", .run_commands = false}};
  }

  static std::vector<collect::Collector> TwoTopics() {
    return {
        {"Processes",
         [](const collect::CollectSources&, collect::PackageStaging& out) {
           out.AddText("Processes", "process_tree.txt", "1 init\n");
         }},
        {"Logins",
         [](const collect::CollectSources&, collect::PackageStaging& out) {
           out.RecordFailure("Logins", "/var/log/wtmp", "No such file or directory");
         }},
    };
  }

  int Run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

  fs::path dir_;
  FakeClock clock_;
};

TEST_F(CollectInvestigationPackageTest, UploadsAZipWithTopicFoldersAndASummaryThenCleansUp) {
  if (Run("command -v 7z") != 0) GTEST_SKIP() << "7z not installed";
  CollectInvestigationPackageAction action(Options(), CopyingSender(), clock_, TwoTopics());
  std::vector<uint32_t> progress;
  ActionContext ctx{.action_id = "act-1",
                    .report_progress = [&](uint32_t p, const std::string&) { progress.push_back(p); }};
  auto result = action.Run(ctx);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ((*result)["artifactName"], kInvestigationPackageArtifact);
  EXPECT_EQ((*result)["artifactCount"], 1);
  EXPECT_EQ((*result)["failureCount"], 1);
  EXPECT_TRUE((*result)["complete"].get<bool>());
  ASSERT_EQ((*result)["topics"].size(), 2u);
  EXPECT_EQ((*result)["topics"][1]["failures"], 1);

  const fs::path stored = dir_ / "server" / "act-1.investigation-package.zip";
  EXPECT_EQ((*result)["sha256"], Sha256Hex(*ReadFile(stored.string())));
  ASSERT_EQ(Run("7z t " + stored.string()), 0);
  ASSERT_EQ(Run("7z x -o" + (dir_ / "x").string() + " " + stored.string()), 0);
  EXPECT_EQ(*ReadFile((dir_ / "x" / "Processes" / "process_tree.txt").string()), "1 init\n");
  auto summary = nlohmann::json::parse(*ReadFile((dir_ / "x" / "CollectionSummaryReport.json").string()));
  EXPECT_EQ(summary["topics"][1]["failures"][0]["item"], "/var/log/wtmp");
  EXPECT_TRUE(fs::exists(dir_ / "x" / "CollectionSummaryReport.html"));

  EXPECT_TRUE(fs::is_empty(dir_ / "work"));  // staging and zip removed
  ASSERT_FALSE(progress.empty());
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_GE(progress.back(), 98u);
}

TEST_F(CollectInvestigationPackageTest, AFailedUploadFailsTheActionAndLeavesNothingBehind) {
  ArtifactSender refuse = [](const std::string&, const std::string&, const std::string&,
                             std::stop_token, const std::function<void(uint64_t, uint64_t)>&)
      -> Result<SentArtifact> { return Unavailable("server unreachable for 30 minutes"); };
  CollectInvestigationPackageAction action(Options(), refuse, clock_, TwoTopics());
  ActionContext ctx{.action_id = "act-2"};
  auto result = action.Run(ctx);
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(fs::is_empty(dir_ / "work"));
}

TEST_F(CollectInvestigationPackageTest, TopicsAfterTheLimitAreReportedNotSilentlyDropped) {
  if (Run("command -v 7z") != 0) GTEST_SKIP() << "7z not installed";
  auto topics = TwoTopics();
  topics.insert(topics.begin(), {"Big", [](const collect::CollectSources&,
                                           collect::PackageStaging& out) {
                                   out.AddText("Big", "all.txt", std::string(5000, 'x'));
                                 }});
  CollectInvestigationPackageAction action(
      Options({.max_artifact_bytes = 4096, .max_total_bytes = 4096}), CopyingSender(), clock_,
      topics);
  ActionContext ctx{.action_id = "act-3"};
  auto result = action.Run(ctx);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_FALSE((*result)["complete"].get<bool>());
  EXPECT_EQ((*result)["incompleteReason"], "size limit");
  EXPECT_EQ((*result)["topics"][1]["artifacts"], 0);  // Processes never ran
  EXPECT_EQ((*result)["topics"][1]["failures"], 1);
}

TEST_F(CollectInvestigationPackageTest, OneCollectionAtATimeAndCancelStopsIt) {
  std::latch entered(1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::vector<collect::Collector> slow = {
      {"Slow", [&](const collect::CollectSources&, collect::PackageStaging&) {
         entered.count_down();
         released.wait();
       }}};
  CollectInvestigationPackageAction action(Options(), CopyingSender(), clock_, slow);
  std::stop_source stop;
  ActionContext first{.action_id = "act-4", .stop = stop.get_token()};
  auto running = std::async(std::launch::async, [&] { return action.Run(first); });
  entered.wait();
  ActionContext second{.action_id = "act-5"};
  EXPECT_EQ(action.Run(second).status().code(), StatusCode::kFailedPrecondition);
  stop.request_stop();
  release.set_value();
  EXPECT_EQ(running.get().status().code(), StatusCode::kCancelled);
  EXPECT_TRUE(fs::is_empty(dir_ / "work"));
}

TEST_F(CollectInvestigationPackageTest, RefusesUnknownParameters) {
  CollectInvestigationPackageAction action(Options(), CopyingSender(), clock_, TwoTopics());
  EXPECT_TRUE(action.Validate({{"Comment", "after the alert"}}).ok());
  EXPECT_EQ(action.Validate({{"Path", "/etc"}}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quell::agent
