#include "agent/scan/scanner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "agent/scan/testing/scan_corpus.h"
#include "common/files.h"
#include "common/hash.h"

namespace quell::agent::scan {
namespace {

using quell::testing::TempDir;
using namespace quell::agent::scan::testing;
using HitSet = std::set<std::pair<std::string, std::string>>;

class ScannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteSignatures(dir_.path());
    files_ = dir_ / "files";
    WriteText(files_ + "/eicar.com", EicarString());
    WriteText(files_ + "/sub/marker.bin", std::string("prefix ") + kNdbMarker + " suffix");
    WriteText(files_ + "/sub/deeper/rule.txt", std::string("x\n") + kYaraMarker + "\n");
    WriteText(files_ + "/clean.txt", "nothing to see here\n");
    std::filesystem::copy_file("/bin/ls", files_ + "/ls-copy");
    WriteText(dir_ / "zipsrc/inner/eicar.com", EicarString());
    ASSERT_EQ(std::system(("cd '" + dir_ / "zipsrc" + "' && zip -q -r '" + files_ +
                           "/archive.zip' inner")
                              .c_str()),
              0);
  }

  std::shared_ptr<const ScanEngines> Engines() {
    auto e = ScanEngines::Load({dir_ / "db"}, {dir_ / "rules"}, ClamLimits{});
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? *e : nullptr;
  }

  std::vector<FileItem> Files() {
    auto f = EnumerateFiles({{files_, "", true}}, {}, {}, nullptr);
    EXPECT_TRUE(f.ok());
    return f.ok() ? *f : std::vector<FileItem>{};
  }

  TempDir dir_;
  std::string files_;
};

TEST_F(ScannerTest, DetectionsMatchClamscanAndYaraOracles) {
  auto engines = Engines();
  ASSERT_NE(engines, nullptr);
  EXPECT_EQ(engines->clam.signature_count(), 2u);
  EXPECT_EQ(engines->yara.rule_count(), 1u);
  std::atomic<int> reported{0};
  auto summary = RunScan(*engines, Files(), ScannerOptions{.threads = 2, .cpu_limit_percent = 100},
                         nullptr, [&](const ScanHit&) { ++reported; }, nullptr, {});
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();

  HitSet clam, yara;
  for (const ScanHit& h : summary->hits) {
    (h.detector_id == "quell.av.clamav" ? clam : yara).insert({h.path, h.threat_name});
  }
  const HitSet clam_oracle = ClamscanOracle(dir_ / "db", files_);
  const HitSet yara_oracle = YaraOracle(dir_ / "rules/quell-test.yar", files_);
  // The oracles themselves must see the planted files, or the comparison proves nothing.
  ASSERT_EQ(clam_oracle.size(), 3u);
  ASSERT_EQ(yara_oracle.size(), 1u);
  EXPECT_EQ(clam, clam_oracle);
  EXPECT_EQ(yara, yara_oracle);
  EXPECT_EQ(reported.load(), 4);
  EXPECT_EQ(summary->files_scanned, 6u);
}

TEST_F(ScannerTest, HitInsideZipNamesTheMemberAndHashesTheArchive) {
  auto engines = Engines();
  ASSERT_NE(engines, nullptr);
  auto summary = RunScan(*engines, Files(), ScannerOptions{.threads = 1}, nullptr, nullptr,
                         nullptr, {});
  ASSERT_TRUE(summary.ok());
  const ScanHit* zip_hit = nullptr;
  for (const ScanHit& h : summary->hits) {
    if (h.path == files_ + "/archive.zip") zip_hit = &h;
  }
  ASSERT_NE(zip_hit, nullptr);
  EXPECT_EQ(zip_hit->threat_name, "Quell.Test.Eicar.UNOFFICIAL");
  // libclamav names a zip member by its file name, without the directories inside the zip.
  EXPECT_EQ(zip_hit->member_path, "eicar.com");
  EXPECT_EQ(zip_hit->sha256, Sha256Hex(*ReadFile(files_ + "/archive.zip")));
}

TEST_F(ScannerTest, ArchiveRecursionLimitStopsAtTheConfiguredDepth) {
  // A zip inside a zip: found with the default depth, not with depth 1.
  ASSERT_EQ(std::system(("cd '" + files_ + "' && zip -q nested.zip archive.zip && rm archive.zip "
                         "eicar.com")
                            .c_str()),
            0);
  auto shallow = ScanEngines::Load({dir_ / "db"}, {}, ClamLimits{.archive_max_recursion = 1});
  ASSERT_TRUE(shallow.ok());
  auto deep = Engines();
  auto count_clam = [&](const ScanEngines& e) {
    auto s = RunScan(e, Files(), ScannerOptions{}, nullptr, nullptr, nullptr, {});
    int n = 0;
    for (const ScanHit& h : s->hits) n += h.detector_id == "quell.av.clamav";
    return n;
  };
  EXPECT_EQ(count_clam(*deep), 2);     // nested.zip + marker.bin
  EXPECT_EQ(count_clam(**shallow), 1);  // marker.bin only
}

TEST_F(ScannerTest, NoSignaturesAtAllIsAClearFailure) {
  auto e = ScanEngines::Load({dir_ / "nonexistent"}, {dir_ / "also-missing"}, ClamLimits{});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(e.status().message().find("no ClamAV signatures and no YARA rules"), std::string::npos);
}

TEST_F(ScannerTest, BrokenYaraFileIsReportedAndTheOthersStillLoad) {
  WriteText(dir_ / "rules/broken.yar", "rule broken { condition: nonsense_identifier }\n");
  auto e = Engines();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->yara.rule_count(), 1u);
  ASSERT_EQ(e->warnings.size(), 1u);
  EXPECT_NE(e->warnings[0].find("broken.yar:1"), std::string::npos) << e->warnings[0];
}

TEST_F(ScannerTest, CacheSkipsUnchangedCleanFilesAndRescansChangedOnes) {
  auto engines = Engines();
  ScanCache cache;
  auto first = RunScan(*engines, Files(), ScannerOptions{}, &cache, nullptr, nullptr, {});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->files_cached, 0u);
  EXPECT_EQ(cache.size(), 2u);  // clean.txt and ls-copy; infected files are never cached

  // Plant a detection in a file the cache knows as clean: it must be scanned again.
  WriteText(files_ + "/clean.txt", std::string("now ") + kYaraMarker);
  auto second = RunScan(*engines, Files(), ScannerOptions{}, &cache, nullptr, nullptr, {});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->files_cached, 1u);  // ls-copy only
  EXPECT_EQ(second->hits.size(), first->hits.size() + 1);

  // New signatures invalidate every cached verdict.
  auto other = ScanEngines::Load({dir_ / "db"}, {}, ClamLimits{});
  ASSERT_NE((*other)->signature_version, engines->signature_version);
  auto third = RunScan(**other, Files(), ScannerOptions{}, &cache, nullptr, nullptr, {});
  EXPECT_EQ(third->files_cached, 0u);

  // Persistence round trip.
  ASSERT_TRUE(cache.SaveTo(dir_ / "cache").ok());
  ScanCache loaded;
  loaded.LoadFrom(dir_ / "cache");
  EXPECT_EQ(loaded.size(), cache.size());
}

TEST_F(ScannerTest, FilesAboveTheSizeLimitAreSkippedAndCounted) {
  auto engines = Engines();
  auto s = RunScan(*engines, Files(), ScannerOptions{.max_file_bytes = 100}, nullptr, nullptr,
                   nullptr, {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->files_too_large, 2u);  // ls-copy and archive.zip
}

TEST_F(ScannerTest, ProgressIsReportedAndCancelStopsPromptly) {
  // Enough work that the scan is still running when cancelled.
  for (int i = 0; i < 300; ++i) {
    std::filesystem::copy_file("/bin/ls", files_ + "/bulk-" + std::to_string(i));
  }
  auto engines = Engines();
  std::stop_source stop;
  std::atomic<int> progress_calls{0};
  auto start = std::chrono::steady_clock::now();
  auto s = RunScan(
      *engines, Files(),
      ScannerOptions{.threads = 1, .cpu_limit_percent = 5, .progress_interval_ms = 20}, nullptr,
      nullptr,
      [&](const ScanProgress& p) {
        if (p.files_done > 0 && p.files_done < p.files_total) ++progress_calls;
        if (progress_calls >= 2) stop.request_stop();
      },
      stop.get_token());
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kCancelled);
  EXPECT_GE(progress_calls.load(), 2);
  EXPECT_LT(took, std::chrono::seconds(5));
}

TEST(DutyCycleThrottleTest, HoldsAThreadNearItsShare) {
  DutyCycleThrottle throttle(0.25);
  auto cpu_ns = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
  };
  const auto wall0 = std::chrono::steady_clock::now();
  const int64_t cpu0 = cpu_ns();
  volatile uint64_t sink = 0;
  while (cpu_ns() - cpu0 < 200'000'000) {  // 200 ms of CPU in small work items
    for (int i = 0; i < 100000; ++i) sink = sink + static_cast<uint64_t>(i);
    throttle.Pace({});
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  const double cpu_s = static_cast<double>(cpu_ns() - cpu0) / 1e9;
  EXPECT_LE(cpu_s / wall_s, 0.30) << "cpu " << cpu_s << " s over " << wall_s << " s";
}

}  // namespace
}  // namespace quell::agent::scan
