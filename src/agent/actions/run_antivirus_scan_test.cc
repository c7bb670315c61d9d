#include "agent/actions/run_antivirus_scan.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "agent/scan/testing/scan_corpus.h"
#include "common/files.h"
#include "common/hash.h"

namespace quell::agent {
namespace {

using quell::testing::TempDir;
using namespace quell::agent::scan::testing;
using HitSet = std::set<std::pair<std::string, std::string>>;

class FakeDetectionSink final : public DetectionSink {
 public:
  void Report(Detection d) override {
    std::lock_guard lock(mu_);
    detections_.push_back(std::move(d));
  }
  std::vector<Detection> Detections() {
    std::lock_guard lock(mu_);
    return detections_;
  }

 private:
  std::mutex mu_;
  std::vector<Detection> detections_;
};

// A host tree under `root/host`: detections in Quick locations plus one outside them, and
// signatures under `root/sigs` (outside the scanned tree).
class RunAntiVirusScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteSignatures(sigs_);
    WriteText(host_ + "/tmp/eicar.com", EicarString());
    WriteText(host_ + "/var/tmp/dropper.bin", std::string("..") + kNdbMarker + "..");
    WriteText(host_ + "/dev/shm/staged.txt", std::string(kYaraMarker) + "\n");
    WriteText(host_ + "/home/alice/notes.txt", "clean\n");
    WriteText(zipsrc_ + "/payload/eicar.com", EicarString());
    std::filesystem::create_directories(host_ + "/home/alice/Downloads");
    EXPECT_EQ(std::system(("cd '" + zipsrc_ + "' && zip -q -r '" + host_ +
                           "/home/alice/Downloads/invoice.zip' payload")
                              .c_str()),
              0);
    // Outside every Quick location: found only by Full.
    WriteText(host_ + "/opt/app/lib/implant.so", std::string("ELF?") + kYaraMarker);
    WriteText(host_ + "/usr/share/clean.txt", "clean\n");
    settings_.clamav_database_dirs = {sigs_ + "/db", dir_ / "absent-db"};
    settings_.yara_rule_dirs = {sigs_ + "/rules"};
    settings_.quick_scan_root = host_;
    settings_.quick_scan_processes = false;
    settings_.full_scan_roots = {host_};
    settings_.cpu_limit_percent = 100;
  }

  Result<nlohmann::json> Scan(const std::string& type, RunAntiVirusScanAction& action,
                              std::stop_token stop = {}) {
    ActionContext ctx;
    ctx.action_id = "act-1";
    ctx.parameters = {{"ScanType", type}, {"Comment", "test"}};
    ctx.stop = stop;
    ctx.report_progress = [&](uint32_t pct, const std::string& msg) {
      progress_.push_back({pct, msg});
    };
    return action.Run(ctx);
  }

  static HitSet Paths(const nlohmann::json& result) {
    HitSet out;
    for (const auto& d : result["detections"]) {
      out.insert({d["filePath"].get<std::string>(), d["threatName"].get<std::string>()});
    }
    return out;
  }

  TempDir dir_;
  std::string sigs_ = dir_ / "sigs";
  std::string host_ = dir_ / "host";
  std::string zipsrc_ = dir_ / "zipsrc";
  scan::ScanSettings settings_;
  FakeClock clock_;
  FakeDetectionSink sink_;
  std::vector<std::pair<uint32_t, std::string>> progress_;
};

TEST_F(RunAntiVirusScanTest, ValidatesScanType) {
  RunAntiVirusScanAction action(settings_, &sink_, clock_);
  EXPECT_EQ(action.Spec().type, "RunAntiVirusScan");
  EXPECT_TRUE(action.Validate({{"ScanType", "Quick"}, {"Comment", "x"}}).ok());
  EXPECT_TRUE(action.Validate({{"ScanType", "Full"}}).ok());
  EXPECT_EQ(action.Validate({{"ScanType", "Deep"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(action.Validate({{"Path", "/"}}).code(), StatusCode::kInvalidArgument);
}

TEST_F(RunAntiVirusScanTest, QuickFindsQuickLocationsOnlyAndFullMatchesTheOracles) {
  RunAntiVirusScanAction action(settings_, &sink_, clock_);
  auto quick = Scan("Quick", action);
  ASSERT_TRUE(quick.ok()) << quick.status().ToString();
  EXPECT_EQ(Paths(*quick),
            (HitSet{{host_ + "/tmp/eicar.com", "Quell.Test.Eicar.UNOFFICIAL"},
                    {host_ + "/var/tmp/dropper.bin", "Quell.Test.Marker.UNOFFICIAL"},
                    {host_ + "/dev/shm/staged.txt", "quell_test_marker"},
                    {host_ + "/home/alice/Downloads/invoice.zip", "Quell.Test.Eicar.UNOFFICIAL"}}));
  EXPECT_EQ((*quick)["detectionCount"], 4);
  EXPECT_EQ((*quick)["scanType"], "Quick");
  EXPECT_EQ((*quick)["clamavSignatures"], 2);
  EXPECT_EQ((*quick)["yaraRules"], 1);
  ASSERT_EQ((*quick)["warnings"].size(), 1u);  // the absent database dir, not fatal

  auto full = Scan("Full", action);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  HitSet oracle = ClamscanOracle(sigs_ + "/db", host_);
  for (const auto& hit : YaraOracle(sigs_ + "/rules/quell-test.yar", host_)) oracle.insert(hit);
  EXPECT_EQ(oracle.size(), 5u);
  EXPECT_EQ(Paths(*full), oracle);
  EXPECT_TRUE(Paths(*full).contains({host_ + "/opt/app/lib/implant.so", "quell_test_marker"}));
}

TEST_F(RunAntiVirusScanTest, EachHitIsReportedAsADetectionWithFileEvidence) {
  RunAntiVirusScanAction action(settings_, &sink_, clock_);
  ASSERT_TRUE(Scan("Quick", action).ok());
  auto detections = sink_.Detections();
  ASSERT_EQ(detections.size(), 4u);
  const Detection* zip = nullptr;
  for (const Detection& d : detections) {
    EXPECT_EQ(d.category, "Malware");
    EXPECT_EQ(d.detection_source, "Antivirus");
    EXPECT_EQ(d.action_id, "act-1");
    EXPECT_EQ(d.time, clock_.Now());
    if (d.evidence[0]["fileDetails"]["fileName"] == "invoice.zip") zip = &d;
  }
  ASSERT_NE(zip, nullptr);
  const std::string sha = Sha256Hex(*ReadFile(host_ + "/home/alice/Downloads/invoice.zip"));
  EXPECT_EQ(zip->detector_id, "quell.av.clamav");
  EXPECT_EQ(zip->threat_name, "Quell.Test.Eicar.UNOFFICIAL");
  EXPECT_EQ(zip->dedup_key, "quell.av.clamav:Quell.Test.Eicar.UNOFFICIAL:" + sha);
  const auto& ev = zip->evidence[0];
  EXPECT_EQ(ev["@odata.type"], "#microsoft.graph.security.fileEvidence");
  EXPECT_EQ(ev["fileDetails"]["filePath"], host_ + "/home/alice/Downloads");
  EXPECT_EQ(ev["fileDetails"]["sha256"], sha);
  EXPECT_EQ(ev["archiveMemberPath"], "eicar.com");
}

TEST_F(RunAntiVirusScanTest, SecondScanSkipsUnchangedCleanFilesButStillReportsThreats) {
  settings_.cache_path = dir_ / "scan-cache";
  {
    RunAntiVirusScanAction action(settings_, &sink_, clock_);
    auto first = Scan("Full", action);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ((*first)["filesSkippedUnchanged"], 0);
  }
  // A new action object (as after an agent restart) reads the persisted cache.
  RunAntiVirusScanAction action(settings_, &sink_, clock_);
  auto second = Scan("Full", action);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)["filesSkippedUnchanged"], 2);  // the two clean files
  EXPECT_EQ((*second)["detectionCount"], 5);
}

TEST_F(RunAntiVirusScanTest, NoSignaturesFailsWithAClearMessage) {
  settings_.clamav_database_dirs = {dir_ / "none"};
  settings_.yara_rule_dirs = {};
  RunAntiVirusScanAction action(settings_, &sink_, clock_);
  auto r = Scan("Quick", action);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no ClamAV signatures and no YARA rules"), std::string::npos);
}

TEST_F(RunAntiVirusScanTest, ReportsProgressAndHonoursCancel) {
  RunAntiVirusScanAction action(settings_, &sink_, clock_);
  ASSERT_TRUE(Scan("Full", action).ok());
  ASSERT_FALSE(progress_.empty());
  EXPECT_NE(progress_.back().second.find("5 detections"), std::string::npos)
      << progress_.back().second;

  std::stop_source stop;
  stop.request_stop();
  auto r = Scan("Full", action, stop.get_token());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
}


// File-hash indicators: every scanned file is matched; BlockAndRemediate is reported and
// queued, Audit reported, Allowed silent; the scan cache does not hide a file from an
// indicator added after a clean scan.
class RunAntiVirusScanIndicatorTest : public RunAntiVirusScanTest {
 protected:
  std::string Sha256Of(const std::string& path) {
    auto data = ReadFile(path);
    return data.ok() ? Sha256Hex(*data) : "";
  }
  ScanIndicatorHooks Hooks() {
    return ScanIndicatorHooks{
        .match_file = [this](const FileToMatch& f) -> std::optional<IndicatorMatch> {
          std::lock_guard lock(mu_);
          if (auto it = indicators_.find(std::string(f.sha256)); it != indicators_.end()) {
            return it->second;
          }
          return std::nullopt;
        },
        .version = [this] {
          std::lock_guard lock(mu_);
          return version_;
        },
        .remediate = [this](const std::string& sha256, const std::string& path,
                            const IndicatorMatch& m) {
          std::lock_guard lock(mu_);
          remediated_.push_back({sha256, path + " " + m.id});
        },
    };
  }
  void Add(const std::string& path, IndicatorAction action, const std::string& id) {
    std::lock_guard lock(mu_);
    const std::string sha = Sha256Of(path);
    indicators_[sha] = IndicatorMatch{.id = id, .value = sha, .action = action,
                                      .severity = "High", .title = "title " + id,
                                      .generate_alert = true};
    ++version_;
  }
  std::mutex mu_;
  std::map<std::string, IndicatorMatch> indicators_;
  uint64_t version_ = 1;
  std::vector<std::pair<std::string, std::string>> remediated_;
};

TEST_F(RunAntiVirusScanIndicatorTest, IndicatorMatchesAreHitsAndBlockAndRemediateIsQueued) {
  const std::string tool = host_ + "/tmp/tool.bin";
  const std::string audited = host_ + "/home/alice/notes.txt";
  const std::string allowed = host_ + "/tmp/allowed.bin";
  WriteText(tool, "unique tool bytes 7c1f0e");
  WriteText(allowed, "allowed bytes 51aa");
  Add(tool, IndicatorAction::kBlockAndRemediate, "ind-bar");
  Add(audited, IndicatorAction::kAudit, "ind-audit");
  Add(allowed, IndicatorAction::kAllowed, "ind-allow");
  RunAntiVirusScanAction action(settings_, &sink_, clock_, Hooks());
  auto quick = Scan("Quick", action);
  ASSERT_TRUE(quick.ok()) << quick.status().ToString();
  HitSet hits = Paths(*quick);
  EXPECT_TRUE(hits.contains({tool, "title ind-bar"}));
  EXPECT_TRUE(hits.contains({audited, "title ind-audit"}));
  for (const auto& [path, name] : hits) EXPECT_NE(path, allowed);
  for (const auto& d : (*quick)["detections"]) {
    if (d["filePath"] == tool) {
      EXPECT_EQ(d["detectorId"], "quell.indicators.file");
      EXPECT_EQ(d["indicatorId"], "ind-bar");
      EXPECT_EQ(d["indicatorAction"], "BlockAndRemediate");
      EXPECT_EQ(d["sha256"], Sha256Of(tool));
    }
  }
  {
    std::lock_guard lock(mu_);
    ASSERT_EQ(remediated_.size(), 1u);
    EXPECT_EQ(remediated_[0].first, Sha256Of(tool));
    EXPECT_EQ(remediated_[0].second, tool + " ind-bar");
  }
  int indicator_alerts = 0;
  for (const Detection& d : sink_.Detections()) {
    if (d.detector_id != "quell.indicators.file") continue;
    ++indicator_alerts;
    if (d.title == "File found by scan and remediated by indicator: tool.bin") {
      EXPECT_NE(d.description.find("ind-bar"), std::string::npos);
      EXPECT_EQ(d.severity, "High");
      EXPECT_EQ(d.action_id, "act-1");
    } else {
      EXPECT_EQ(d.title, "File found by scan matches indicator: notes.txt");
    }
  }
  EXPECT_EQ(indicator_alerts, 2);
}

TEST_F(RunAntiVirusScanIndicatorTest, AFileCachedCleanIsMatchedAfterTheIndicatorsChange) {
  const std::string tool = host_ + "/tmp/later.bin";
  WriteText(tool, "arrives clean, flagged later 93be");
  RunAntiVirusScanAction action(settings_, &sink_, clock_, Hooks());
  auto first = Scan("Quick", action);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(Paths(*first).contains({tool, "title ind-late"}));
  Add(tool, IndicatorAction::kBlock, "ind-late");
  auto second = Scan("Quick", action);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(Paths(*second).contains({tool, "title ind-late"}));
  std::lock_guard lock(mu_);
  EXPECT_TRUE(remediated_.empty());  // Block: reported, not quarantined
}

}  // namespace
}  // namespace quell::agent
