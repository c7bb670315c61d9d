#include "agent/live/live_remediation.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

#include "agent/quarantine/testing/tree_snapshot.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::live {
namespace {

using Json = nlohmann::json;
using quarantine::testing::Snapshot;
using quarantine::testing::WriteFileAt;

class LiveRemediationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_ / "root";
    options_.journal_path = tmp_ / "work/kept/remediations.json";
    options_.persistence.root = root_;
    options_.persistence.use_systemctl = false;
    options_.persistence.run_command = [](const std::vector<std::string>& argv) -> Result<int> {
      ADD_FAILURE() << "ran " << argv[0];
      return 1;
    };
    WriteFileAt(root_ + "/etc/crontab", "SHELL=/bin/sh\n*/5 * * * * root /tmp/evil.sh --beacon\n"
                                        "0 1 * * * root /usr/bin/backup\n");
    WriteFileAt(root_ + "/etc/cron.d/evil", "@reboot root '/tmp/evil.sh'\n");
    WriteFileAt(root_ + "/var/spool/cron/crontabs/bob", "* * * * * /home/bob/ok.sh\n", 0600);
    struct timespec times[2] = {{1'600'000'000, 1}, {1'550'000'000, 2}};
    ::utimensat(AT_FDCWD, (root_ + "/etc/crontab").c_str(), times, 0);
  }

  std::unique_ptr<LiveRemediation> Open() {
    auto r = LiveRemediation::Open(options_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  quell::testing::TempDir tmp_;
  std::string root_;
  RemediationOptions options_;
};

TEST_F(LiveRemediationTest, CronRemovedAndUndoneByteForByteAfterRestart) {
  const auto before = Snapshot(root_);
  const std::string crontab = *ReadFile(root_ + "/etc/crontab");
  {
    auto rem = Open();
    auto rec = rem->Remediate("cron", "/tmp/evil.sh", "sess-1", "alice");
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_EQ((*rec)["id"], "r1");
    ASSERT_EQ((*rec)["removed"].size(), 2u);
    EXPECT_EQ(*ReadFile(root_ + "/etc/crontab"), "SHELL=/bin/sh\n0 1 * * * root /usr/bin/backup\n");
    EXPECT_EQ(ReadFile(root_ + "/etc/cron.d/evil")->find("evil.sh"), std::string::npos);
    EXPECT_EQ(*ReadFile(root_ + "/var/spool/cron/crontabs/bob"), "* * * * * /home/bob/ok.sh\n");
    EXPECT_TRUE(std::filesystem::exists(options_.journal_path));
  }
  // A new agent process: the journal is all it has.
  auto rem = Open();
  auto undone = rem->Undo(std::nullopt);
  ASSERT_TRUE(undone.ok()) << undone.status().ToString();
  EXPECT_EQ((*undone)["id"], "r1");
  EXPECT_EQ(*ReadFile(root_ + "/etc/crontab"), crontab);
  EXPECT_EQ(Snapshot(root_), before);
  EXPECT_EQ(rem->Undo(std::string("r1")).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(rem->Undo(std::nullopt).status().code(), StatusCode::kNotFound);
  // Ids keep counting across restarts.
  auto again = rem->Remediate("cron", "/tmp/evil.sh", "sess-2", "alice");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["id"], "r2");
}

TEST_F(LiveRemediationTest, NothingMatchingIsNotFoundAndNotRecorded) {
  auto rem = Open();
  EXPECT_EQ(rem->Remediate("cron", "/tmp/absent", "s", "a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(rem->Remediate("service", "absent", "s", "a").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(rem->Remediate("registry", "x", "s", "a").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(rem->Records().empty());
}

TEST_F(LiveRemediationTest, ServiceUnitAndEnableSymlinksRemovedAndRestored) {
  WriteFileAt(root_ + "/etc/systemd/system/evil.service",
              "[Service]\nExecStart=/tmp/evil.sh\n[Install]\nWantedBy=multi-user.target\n");
  WriteFileAt(root_ + "/etc/systemd/system/good.service", "[Service]\nExecStart=/bin/true\n");
  std::filesystem::create_directories(root_ + "/etc/systemd/system/multi-user.target.wants");
  std::filesystem::create_symlink("/etc/systemd/system/evil.service",
                                  root_ + "/etc/systemd/system/multi-user.target.wants/evil.service");
  std::filesystem::create_symlink("/etc/systemd/system/good.service",
                                  root_ + "/etc/systemd/system/multi-user.target.wants/good.service");
  const auto before = Snapshot(root_);
  auto rem = Open();
  auto rec = rem->Remediate("service", "evil", "s", "a");
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ((*rec)["removed"].size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/etc/systemd/system/evil.service"));
  EXPECT_FALSE(std::filesystem::is_symlink(root_ + "/etc/systemd/system/multi-user.target.wants/evil.service"));
  EXPECT_TRUE(std::filesystem::is_symlink(root_ + "/etc/systemd/system/multi-user.target.wants/good.service"));
  ASSERT_TRUE(rem->Undo(std::string("r1")).ok());
  EXPECT_EQ(Snapshot(root_), before);
}

TEST_F(LiveRemediationTest, ServiceUsesSystemctlOnlyWhenAllowed) {
  WriteFileAt(root_ + "/etc/systemd/system/evil.service", "[Service]\nExecStart=/tmp/evil.sh\n");
  std::vector<std::string> calls;
  options_.persistence.use_systemctl = true;
  options_.persistence.run_command = [&](const std::vector<std::string>& argv) -> Result<int> {
    std::string line;
    for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
    calls.push_back(line);
    return 0;
  };
  auto rem = Open();
  ASSERT_TRUE(rem->Remediate("service", "evil.service", "s", "a").ok());
  ASSERT_TRUE(rem->Undo(std::nullopt).ok());
  EXPECT_EQ(calls, (std::vector<std::string>{"systemctl is-active --quiet evil.service",
                                             "systemctl stop evil.service", "systemctl daemon-reload",
                                             "systemctl daemon-reload", "systemctl start evil.service"}));
}

TEST_F(LiveRemediationTest, FileQuarantinedAndRestored) {
  WriteFileAt(root_ + "/tmp/evil.bin", "\x7f" "ELF quell live remediation payload\n", 0755);
  std::filesystem::create_directories(tmp_ / "proc");
  auto q = quarantine::FileQuarantine::Open({.state_dir = tmp_ / "state",
                                             .root = root_,
                                             .proc_root = tmp_ / "proc",
                                             .use_systemctl = false,
                                             .search_quick_scan_locations = false});
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  options_.quarantine = q->get();
  const auto before = Snapshot(root_ + "/tmp", /*with_dir_mtime=*/false);
  auto rem = Open();
  auto rec = rem->Remediate("file", "/tmp/evil.bin", "s", "a");
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(root_ + "/tmp/evil.bin"));
  EXPECT_EQ((*rec)["removed"][0]["location"], "/tmp/evil.bin");
  auto undone = rem->Undo(std::string("r1"));
  ASSERT_TRUE(undone.ok()) << undone.status().ToString();
  EXPECT_EQ(Snapshot(root_ + "/tmp", false), before);
}

TEST_F(LiveRemediationTest, ProcessKilledAndUndoRefusesClearly) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Until exec has happened, the child's exe is still this test binary.
  for (int i = 0; i < 200; ++i) {
    char buf[256] = {};
    ssize_t n = ::readlink(("/proc/" + std::to_string(child) + "/exe").c_str(), buf, sizeof buf - 1);
    if (n > 0 && std::string(buf).find("sleep") != std::string::npos) break;
    ::usleep(10'000);
  }
  auto rem = Open();
  auto rec = rem->Remediate("process", std::to_string(child), "s", "a");
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  auto undo = rem->Undo(std::nullopt);
  EXPECT_EQ(undo.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(undo.status().message().find("a stopped process cannot be restarted; its executable is"),
            std::string::npos) << undo.status().message();
  EXPECT_NE(undo.status().message().find("sleep"), std::string::npos);
  EXPECT_EQ(rem->Remediate("process", "1", "s", "a").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(rem->Remediate("process", "12ab", "s", "a").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quell::agent::live
