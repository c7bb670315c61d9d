#include "agent/collect/package_summary.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/files.h"

namespace quell::agent::collect {
namespace {

namespace fs = std::filesystem;

TEST(PackageSummaryTest, SaysPerTopicWhatWasCollectedAndWhatFailedAndWhy) {
  const fs::path dir = fs::temp_directory_path() / ("quell-summary-" + std::to_string(::getpid()));
  FakeClock clock;
  std::stop_source stop;
  auto staging = PackageStaging::Create(dir.string(), {.max_artifact_bytes = 4}, stop.get_token(),
                                        clock);
  ASSERT_TRUE(staging.ok());
  PackageStaging& s = **staging;
  s.AddText("Processes", "tree.txt", "1 init", "/proc");
  s.RecordFailure("Logins", "/var/log/wtmp", "No such file or directory");
  PackageInfo info{.action_id = "a1", .computer_name = "web-1", .started = clock.Now(),
                   .finished = clock.Now() + 1500, .topics = {"Processes", "Logins", "Services"}};
  ASSERT_TRUE(WriteSummary(SummaryJson(info, s), s).ok());

  auto json = nlohmann::json::parse(*ReadFile((dir / kSummaryJsonName).string()));
  EXPECT_EQ(json["computerDnsName"], "web-1");
  EXPECT_TRUE(json["complete"].get<bool>());
  ASSERT_EQ(json["topics"].size(), 3u);
  EXPECT_EQ(json["topics"][0]["name"], "Processes");
  EXPECT_EQ(json["topics"][0]["artifacts"][0]["path"], "Processes/tree.txt");
  EXPECT_TRUE(json["topics"][0]["artifacts"][0]["truncated"].get<bool>());
  EXPECT_EQ(json["topics"][1]["failures"][0]["reason"], "No such file or directory");
  EXPECT_TRUE(json["topics"][2]["artifacts"].empty());

  const std::string html = *ReadFile((dir / kSummaryHtmlName).string());
  EXPECT_NE(html.find("Investigation package: web-1"), std::string::npos);
  EXPECT_NE(html.find("/var/log/wtmp</td><td>No such file or directory"), std::string::npos);
  fs::remove_all(dir);
}

TEST(PackageSummaryTest, HtmlEscapesWhatCameFromTheDevice) {
  nlohmann::json summary = {{"computerDnsName", "<script>x</script>"},
                            {"topics", {{{"name", "T"},
                                         {"artifacts", nlohmann::json::array()},
                                         {"failures", {{{"item", "a&b"}, {"reason", "\"q\""}}}}}}}};
  const std::string html = SummaryHtml(summary);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("a&amp;b"), std::string::npos);
}

TEST(PackageSummaryTest, AnIncompletePackageSaysWhy) {
  const fs::path dir = fs::temp_directory_path() / ("quell-summary2-" + std::to_string(::getpid()));
  FakeClock clock;
  std::stop_source stop;
  auto staging = PackageStaging::Create(dir.string(), {.time_limit = std::chrono::seconds(1)},
                                        stop.get_token(), clock);
  ASSERT_TRUE(staging.ok());
  clock.Advance(2000);
  nlohmann::json json = SummaryJson({.topics = {"Processes"}}, **staging);
  EXPECT_FALSE(json["complete"].get<bool>());
  EXPECT_EQ(json["incompleteReason"], "time limit");
  EXPECT_NE(SummaryHtml(json).find("stopped at the time limit"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace quell::agent::collect
