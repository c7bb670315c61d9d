// File-hash indicators at the exec gate: Block/BlockAndRemediate deny with or without a
// restriction, Audit reports, Allowed runs under restriction, expiry needs no message.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "agent/indicators/indicator_set.h"
#include "agent/platform/exec_gate_fake.h"
#include "agent/restriction/restriction_controller.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

using std::chrono::milliseconds;

class RecordingSink final : public DetectionSink {
 public:
  void Report(Detection d) override {
    std::lock_guard lock(mu);
    got.push_back(std::move(d));
  }
  std::vector<Detection> Got() {
    std::lock_guard lock(mu);
    return got;
  }
  std::mutex mu;
  std::vector<Detection> got;
};

class IndicatorGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::canonical(dir_.path()).string();
    ASSERT_TRUE(MakeDirs(root_ + "/info").ok());
    evil_ = root_ + "/evil";
    other_ = root_ + "/other";
    ASSERT_TRUE(WriteFileAtomic(evil_, "pretend malware\n", 0755).ok());
    ASSERT_TRUE(WriteFileAtomic(other_, "harmless script\n", 0755).ok());
    int fd = open(evil_.c_str(), O_RDONLY);
    evil_digests_ = *DigestFd(fd);
    close(fd);
    ASSERT_TRUE(WriteFileAtomic(root_ + "/mountinfo",
                                "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                                "24 22 0:22 / /tmp rw - tmpfs tmpfs rw\n").ok());
  }

  RestrictionOptions Options() {
    return RestrictionOptions{
        .state_path = root_ + "/restriction.json",
        .require_private_mount_namespace = true,
        .dpkg_info_dir = root_ + "/info",
        .mountinfo_path = root_ + "/mountinfo",
        .in_initial_mount_namespace = [this]() -> Result<bool> { return in_init_ns_; },
        .describe_process =
            [](pid_t pid) {
              return nlohmann::json{{"pid", pid}, {"exe", "/usr/bin/bash"}, {"uid", 0}};
            },
        .clock = &clock_,
        .wait_slice = milliseconds(20),
        .match_file_indicator =
            [this](int, const std::string& sha256, const std::string& sha1, const std::string& md5) {
              ++lookups_;
              return set_.MatchFile(sha256, sha1, md5);
            },
        .remediate = [this](const BlockedFile& f) { remediated_.push_back(f); },
    };
  }

  void Add(std::string id, std::string type, std::string value, std::string action,
           bool alert = true, int64_t expires = 0) {
    quell::v1::Indicator i;
    i.set_id(std::move(id));
    i.set_type(std::move(type));
    i.set_value(std::move(value));
    i.set_action(std::move(action));
    i.set_severity("High");
    i.set_title("Known bad tool");
    i.set_generate_alert(alert);
    i.set_expiration_unix_ms(expires);
    ASSERT_TRUE(set_.Upsert(i).ok());
  }

  bool Answer(FakeExecGate& gate, const std::string& path) {
    auto id = gate.Exec(path, 4242);
    EXPECT_TRUE(id.ok());
    auto a = gate.AwaitAnswer(*id, milliseconds(2000));
    EXPECT_TRUE(a.has_value()) << "no answer for " << path;
    return a.value_or(false);
  }

  quell::testing::TempDir dir_;
  std::string root_, evil_, other_;
  FileDigests evil_digests_;
  bool in_init_ns_ = false;
  FakeClock clock_;
  IndicatorSet set_{clock_};
  RecordingSink sink_;
  std::atomic<int> lookups_{0};
  std::vector<BlockedFile> remediated_;  // worker thread writes; read after answers
};

TEST_F(IndicatorGateTest, BlockDeniesWithoutRestrictionAndReportsOnce) {
  Add("42", "FileSha256", evil_digests_.sha256, "Block");
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.SetIndicatorGate(true).ok());
  EXPECT_TRUE(gate.IsOpen());
  EXPECT_EQ(c.Current(), RestrictionMode::kNone);
  EXPECT_EQ(gate.Marks(), (std::set<std::string>{"/", "/tmp"}));

  EXPECT_FALSE(Answer(gate, evil_));
  EXPECT_TRUE(Answer(gate, other_));  // not from a package, but nothing is restricted
  EXPECT_FALSE(Answer(gate, evil_));

  auto got = sink_.Got();
  ASSERT_EQ(got.size(), 1u);  // no restriction reports, one indicator report
  EXPECT_EQ(got[0].detector_id, "quell.indicators.file");
  EXPECT_EQ(got[0].title, "Execution blocked by indicator: evil");
  EXPECT_EQ(got[0].severity, "High");
  EXPECT_EQ(got[0].detection_source, "CustomTi");
  EXPECT_EQ(got[0].threat_name, "Known bad tool");
  EXPECT_EQ(got[0].evidence[0]["fileDetails"]["sha256"], evil_digests_.sha256);
  EXPECT_EQ(got[0].evidence[0]["fileDetails"]["sha1"], evil_digests_.sha1);
  EXPECT_EQ(got[0].evidence[0]["remediationStatus"], "blocked");
  EXPECT_EQ(got[0].dedup_key, "quell.indicators.file:42:" + evil_digests_.sha256);
  auto stats = c.GetStats();
  EXPECT_EQ(stats.indicator_blocked, 2u);
  EXPECT_EQ(stats.denied, 2u);
  EXPECT_EQ(stats.cache_hits, 1u);  // the second exec of evil was not hashed again
  EXPECT_TRUE(remediated_.empty());
}

TEST_F(IndicatorGateTest, Md5AndSha1IndicatorsMatchToo) {
  Add("m", "FileMd5", evil_digests_.md5, "Block");
  Add("s", "FileSha1", Sha256Hex("harmless script\n").substr(0, 40), "Block");  // no match
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.SetIndicatorGate(true).ok());
  EXPECT_FALSE(Answer(gate, evil_));
  EXPECT_TRUE(Answer(gate, other_));
}

TEST_F(IndicatorGateTest, BlockAndRemediateCallsTheRemediationHook) {
  Add("7", "FileSha256", evil_digests_.sha256, "BlockAndRemediate", /*alert=*/false);
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.SetIndicatorGate(true).ok());
  EXPECT_FALSE(Answer(gate, evil_));
  // The hook runs right after the answer on the same thread; wait for it through a second exec.
  EXPECT_TRUE(Answer(gate, other_));
  ASSERT_EQ(remediated_.size(), 1u);
  EXPECT_EQ(remediated_[0].path, evil_);
  EXPECT_EQ(remediated_[0].sha256, evil_digests_.sha256);
  EXPECT_EQ(remediated_[0].pid, 4242);
  EXPECT_EQ(remediated_[0].indicator.id, "7");
  EXPECT_TRUE(sink_.Got().empty());  // generate_alert was off
}

TEST_F(IndicatorGateTest, AuditReportsAndAllowsUnderEnforceAllowedRuns) {
  Add("a", "FileSha256", evil_digests_.sha256, "Audit");
  Add("ok", "FileSha256", Sha256Hex("harmless script\n"), "Allowed");
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.Restrict(RestrictionMode::kEnforce).ok());
  // Allowed: an unpackaged file runs under restriction, and nothing is reported.
  EXPECT_TRUE(Answer(gate, other_));
  EXPECT_TRUE(sink_.Got().empty());
  // Audit: reported by the indicator, and (not being approved) still denied by restriction.
  EXPECT_FALSE(Answer(gate, evil_));
  auto got = sink_.Got();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].detector_id, "quell.indicators.file");
  EXPECT_EQ(got[0].title, "File indicator matched: evil");
  EXPECT_EQ(got[1].detector_id, "quell.exec-restriction");
  EXPECT_EQ(c.GetStats().indicator_allowed, 1u);
  EXPECT_EQ(c.GetStats().indicator_audited, 1u);

  // Without restriction, Audit allows.
  ASSERT_TRUE(c.Unrestrict().ok());
  ASSERT_TRUE(c.SetIndicatorGate(true).ok());
  clock_.Advance(120'000);  // past the report suppression
  EXPECT_TRUE(Answer(gate, evil_));
  EXPECT_EQ(sink_.Got().size(), 3u);
}

TEST_F(IndicatorGateTest, ExpiredBlockStopsApplyingAlthoughTheVerdictIsCached) {
  Add("x", "FileSha256", evil_digests_.sha256, "Block", true, clock_.Now() + 10'000);
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.SetIndicatorGate(true).ok());
  EXPECT_FALSE(Answer(gate, evil_));
  clock_.Advance(10'000);
  EXPECT_TRUE(Answer(gate, evil_));
  EXPECT_EQ(c.GetStats().cache_hits, 1u);
}

TEST_F(IndicatorGateTest, GateFollowsRestrictionAndIndicatorsTogether) {
  Add("42", "FileSha256", evil_digests_.sha256, "Block");
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.SetIndicatorGate(true).ok());
  ASSERT_TRUE(c.Restrict(RestrictionMode::kEnforce).ok());
  EXPECT_EQ(gate.open_count(), 1);  // the open gate was kept
  EXPECT_FALSE(Answer(gate, other_));  // restriction now judges too
  ASSERT_TRUE(c.Unrestrict().ok());
  EXPECT_TRUE(gate.IsOpen());  // indicators still need it
  EXPECT_TRUE(Answer(gate, other_));
  EXPECT_FALSE(Answer(gate, evil_));
  ASSERT_TRUE(c.SetIndicatorGate(false).ok());
  EXPECT_FALSE(gate.IsOpen());

  // Restriction on, then indicators off: the gate stays for the restriction.
  ASSERT_TRUE(c.Restrict(RestrictionMode::kEnforce).ok());
  ASSERT_TRUE(c.SetIndicatorGate(true).ok());
  ASSERT_TRUE(c.SetIndicatorGate(false).ok());
  EXPECT_TRUE(gate.IsOpen());
  EXPECT_FALSE(Answer(gate, evil_));
}

TEST_F(IndicatorGateTest, NamespaceGuardAppliesToTheIndicatorGate) {
  in_init_ns_ = true;
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  auto s = c.SetIndicatorGate(true);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(gate.IsOpen());
  EXPECT_FALSE(c.GateOpen());
}

}  // namespace
}  // namespace quell::agent
