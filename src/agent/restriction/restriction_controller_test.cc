#include "agent/restriction/restriction_controller.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "agent/platform/exec_gate_fake.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kAnswer{2000};

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

class RestrictionControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::canonical(dir_.path()).string();
    ASSERT_TRUE(MakeDirs(root_ + "/info").ok());
    pkg_ = root_ + "/tool";
    stranger_ = root_ + "/stranger";
    ASSERT_TRUE(WriteFileAtomic(pkg_, "packaged tool\n", 0755).ok());
    ASSERT_TRUE(WriteFileAtomic(stranger_, "dropped by someone\n", 0755).ok());
    // md5("packaged tool\n"), recorded like dpkg does (path without the leading slash).
    std::string md5 = "";
    {
      int fd = open(pkg_.c_str(), O_RDONLY);
      md5 = DigestFd(fd)->md5;
      close(fd);
    }
    ASSERT_TRUE(WriteFileAtomic(root_ + "/info/tool.md5sums", md5 + "  " + pkg_.substr(1) + "\n").ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/mountinfo",
                                "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                                "23 22 0:21 / /proc rw - proc proc rw\n"
                                "24 22 0:22 / /tmp rw - tmpfs tmpfs rw\n").ok());
  }

  RestrictionOptions Options() {
    return RestrictionOptions{
        .state_path = root_ + "/restriction.json",
        .allow_sha256 = allow_,
        .require_private_mount_namespace = true,
        .dpkg_info_dir = root_ + "/info",
        .mountinfo_path = root_ + "/mountinfo",
        .self_exe = "/proc/self/exe",
        .in_initial_mount_namespace = [this]() -> Result<bool> { return in_init_ns_; },
        .describe_process =
            [](pid_t pid) {
              if (pid == 4242) {
                return nlohmann::json{{"pid", 4242}, {"exe", "/usr/bin/bash"},
                                      {"cmdline", "bash -c ./stranger"}, {"uid", 0}, {"ppid", 4000}};
              }
              return nlohmann::json{{"pid", pid}, {"exe", "/usr/sbin/sshd"}, {"cmdline", "sshd: root"}};
            },
        .clock = &clock_,
        .report_suppression = milliseconds(60'000),
        .wait_slice = milliseconds(20),
    };
  }

  bool Answer(FakeExecGate& gate, const std::string& path) {
    auto id = gate.Exec(path, 4242);
    EXPECT_TRUE(id.ok());
    auto a = gate.AwaitAnswer(*id, kAnswer);
    EXPECT_TRUE(a.has_value()) << "no answer for " << path;
    return a.value_or(false);
  }

  quell::testing::TempDir dir_;
  std::string root_, pkg_, stranger_;
  std::vector<std::string> allow_;
  bool in_init_ns_ = false;
  FakeClock clock_;
  RecordingSink sink_;
};

TEST_F(RestrictionControllerTest, EnforceAllowsPackagedFilesDeniesOthersAndReportsOnce) {
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  auto r = c.Restrict(RestrictionMode::kEnforce);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["restrictionMode"], "Enforce");
  EXPECT_EQ((*r)["guardedMounts"], 2);
  EXPECT_EQ(gate.Marks(), (std::set<std::string>{"/", "/tmp"}));

  EXPECT_TRUE(Answer(gate, pkg_));
  EXPECT_FALSE(Answer(gate, stranger_));
  EXPECT_FALSE(Answer(gate, stranger_));  // second denial: same hash, not reported again

  auto got = sink_.Got();
  ASSERT_EQ(got.size(), 1u);
  const Detection& d = got[0];
  EXPECT_EQ(d.detector_id, "quell.exec-restriction");
  EXPECT_EQ(d.category, "Execution");
  EXPECT_EQ(d.title, "Execution blocked: stranger");
  const std::string sha = Sha256Hex("dropped by someone\n");
  EXPECT_EQ(d.dedup_key, "quell.exec-restriction:" + sha);
  ASSERT_EQ(d.evidence.size(), 3u);
  EXPECT_EQ(d.evidence[0]["fileDetails"]["filePath"], stranger_);
  EXPECT_EQ(d.evidence[0]["fileDetails"]["sha256"], sha);
  EXPECT_EQ(d.evidence[0]["remediationStatus"], "blocked");
  EXPECT_EQ(d.evidence[1]["processId"], 4242);
  EXPECT_EQ(d.evidence[1]["imageFile"]["filePath"], "/usr/bin/bash");
  EXPECT_EQ(d.evidence[1]["parentProcessId"], 4000);
  EXPECT_EQ(d.evidence[1]["parentProcessImageFile"]["filePath"], "/usr/sbin/sshd");
  EXPECT_EQ(d.evidence[2]["userAccount"]["accountName"], "root");

  // After the suppression window the same file is reported again.
  clock_.Advance(61'000);
  EXPECT_FALSE(Answer(gate, stranger_));
  EXPECT_EQ(sink_.Got().size(), 2u);
  auto stats = c.GetStats();
  EXPECT_EQ(stats.denied, 3u);
  EXPECT_EQ(stats.allowed, 1u);
  EXPECT_EQ(stats.reports_suppressed, 1u);
}

TEST_F(RestrictionControllerTest, AuditAllowsButReports) {
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.Restrict(RestrictionMode::kAudit).ok());
  EXPECT_TRUE(Answer(gate, stranger_));
  ASSERT_EQ(sink_.Got().size(), 1u);
  EXPECT_EQ(sink_.Got()[0].title, "Execution would be blocked (audit): stranger");
  EXPECT_EQ(c.GetStats().audited, 1u);
  // Switching to Enforce keeps the gate (no re-open) and starts denying.
  ASSERT_TRUE(c.Restrict(RestrictionMode::kEnforce).ok());
  EXPECT_EQ(gate.open_count(), 1);
  EXPECT_FALSE(Answer(gate, stranger_));
}

TEST_F(RestrictionControllerTest, AllowListedHashRuns) {
  allow_ = {Sha256Hex("dropped by someone\n")};
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.Restrict(RestrictionMode::kEnforce).ok());
  EXPECT_TRUE(Answer(gate, stranger_));
  EXPECT_TRUE(sink_.Got().empty());
}

TEST_F(RestrictionControllerTest, GuardRefusesTheInitialMountNamespace) {
  in_init_ns_ = true;
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  auto r = c.Restrict(RestrictionMode::kEnforce);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("require_private_mount_namespace"), std::string::npos);
  EXPECT_FALSE(gate.IsOpen());
  EXPECT_EQ(c.Current(), RestrictionMode::kNone);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/restriction.json"));
}

TEST_F(RestrictionControllerTest, PersistsAndRestoresAndUnrestrictReleasesEverything) {
  {
    FakeExecGate gate;
    RestrictionController c(gate, &sink_, Options());
    ASSERT_TRUE(c.Restrict(RestrictionMode::kEnforce).ok());
  }  // like a crash: the gate closes, the kernel allows
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.Restore().ok());
  EXPECT_EQ(c.Current(), RestrictionMode::kEnforce);
  EXPECT_FALSE(Answer(gate, stranger_));

  // A request the worker has not answered yet is released (allowed) by Unrestrict.
  auto r = c.Unrestrict();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["previousRestrictionMode"], "Enforce");
  EXPECT_FALSE(gate.IsOpen());
  EXPECT_TRUE(gate.Marks().empty());

  FakeExecGate after;
  RestrictionController restarted(after, &sink_, Options());
  ASSERT_TRUE(restarted.Restore().ok());
  EXPECT_EQ(restarted.Current(), RestrictionMode::kNone);
  EXPECT_FALSE(after.IsOpen());
}

TEST_F(RestrictionControllerTest, FailsOpenOnEvaluationErrorsAndSurvivesGateFaults) {
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.Restrict(RestrictionMode::kEnforce).ok());
  EXPECT_TRUE(Answer(gate, root_));  // a directory cannot be hashed: allowed, counted
  EXPECT_EQ(c.GetStats().errors_allowed, 1u);

  gate.FailNextWait(Unavailable("ENOBUFS"));
  gate.InjectOverflow();
  EXPECT_FALSE(Answer(gate, stranger_));  // the loop carries on after a failed wait

  gate.FailNextRespond(Internal("write failed"));
  auto id = gate.Exec(stranger_, 1);
  for (int i = 0; i < 200 && c.GetStats().respond_errors == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(gate.Pending(), 0u);  // the fd was released although answering failed
  (void)id;
  EXPECT_EQ(c.GetStats().respond_errors, 1u);
}

TEST_F(RestrictionControllerTest, MountChangesAreMarked) {
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  ASSERT_TRUE(c.Restrict(RestrictionMode::kEnforce).ok());
  ASSERT_TRUE(WriteFileAtomic(root_ + "/mountinfo",
                              "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                              "30 22 0:22 /x /usr/bin/tac rw - tmpfs tmpfs rw\n").ok());
  gate.InjectMountsChanged();
  for (int i = 0; i < 200 && !gate.Marks().contains("/usr/bin/tac"); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(gate.Marks().contains("/usr/bin/tac"));
}

TEST_F(RestrictionControllerTest, CorruptStateIsAnErrorAndLeavesExecutionAlone) {
  ASSERT_TRUE(WriteFileAtomic(root_ + "/restriction.json", "{not json").ok());
  FakeExecGate gate;
  RestrictionController c(gate, &sink_, Options());
  EXPECT_FALSE(c.Restore().ok());
  EXPECT_FALSE(gate.IsOpen());
}

}  // namespace
}  // namespace quell::agent
