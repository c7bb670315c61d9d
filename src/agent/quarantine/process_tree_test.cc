#include "agent/quarantine/process_tree.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <map>

#include "agent/quarantine/testing/tree_snapshot.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::quarantine {
namespace {

using quell::testing::TempDir;

// A fake /proc: <root>/<pid>/{stat,cmdline,exe,cwd}.
class FakeProc {
 public:
  explicit FakeProc(std::string root) : root_(std::move(root)) {}
  void Add(pid_t pid, pid_t ppid, const std::string& exe, std::vector<std::string> argv,
           const std::string& cwd = "/") {
    const std::string dir = root_ + "/" + std::to_string(pid);
    std::filesystem::create_directories(dir);
    // comm with spaces and ')' to exercise the parser.
    testing::WriteFileAt(dir + "/stat", std::to_string(pid) + " (we) ird) S " + std::to_string(ppid) +
                                            " 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 " +
                                            std::to_string(1000 + pid) + " 0 0\n");
    std::string cmdline;
    for (const auto& a : argv) cmdline += a + std::string(1, '\0');
    testing::WriteFileAt(dir + "/cmdline", cmdline);
    if (!exe.empty()) std::filesystem::create_symlink(exe, dir + "/exe");
    std::filesystem::create_symlink(cwd, dir + "/cwd");
  }
  void Remove(pid_t pid) { std::filesystem::remove_all(root_ + "/" + std::to_string(pid)); }
  bool Exists(pid_t pid) const { return std::filesystem::exists(root_ + "/" + std::to_string(pid)); }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

// Records signals; SIGKILL makes the process disappear from the fake /proc.
class FakeSignaller final : public ProcessSignaller {
 public:
  explicit FakeSignaller(FakeProc& proc) : proc_(proc) {}
  Status Signal(const ProcessInfo& p, int sig) override {
    signals.push_back({p.pid, sig});
    if (on_signal) on_signal(p.pid, sig);
    if (sig == SIGKILL && !immortal.contains(p.pid)) proc_.Remove(p.pid);
    return Status::Ok();
  }
  std::vector<pid_t> WaitExited(const std::vector<ProcessInfo>& ps, std::chrono::milliseconds) override {
    std::vector<pid_t> alive;
    for (const auto& p : ps) {
      if (proc_.Exists(p.pid)) alive.push_back(p.pid);
    }
    return alive;
  }
  std::vector<std::pair<pid_t, int>> signals;
  std::function<void(pid_t, int)> on_signal;
  std::set<pid_t> immortal;

 private:
  FakeProc& proc_;
};

TEST(ProcStatTest, ParsesAfterTheLastParenthesis) {
  pid_t ppid = 0;
  uint64_t start = 0;
  ASSERT_TRUE(ParseProcStat("42 (a) b) c) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0", ppid, start));
  EXPECT_EQ(ppid, 7);
  EXPECT_EQ(start, 98765u);
  EXPECT_FALSE(ParseProcStat("42 (x) S 7", ppid, start));
  EXPECT_FALSE(ParseProcStat("garbage", ppid, start));
}

class ProcessTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proc_.Add(1, 0, "/tmp/evil", {"/tmp/evil"});                 // pid 1: never touched
    proc_.Add(100, 1, "/tmp/evil", {"/tmp/evil", "-d"});          // runs it
    proc_.Add(101, 100, "/usr/bin/sleep", {"sleep", "60"});       // child
    proc_.Add(102, 101, "/usr/bin/cat", {"cat"});                 // grandchild
    proc_.Add(200, 1, "/usr/bin/bash", {"bash", "/tmp/evil"});    // as a script
    proc_.Add(201, 1, "/usr/bin/dash", {"sh", "./evil"}, "/tmp");  // relative script
    proc_.Add(202, 1, "/usr/bin/python3.11", {"python3", "-u", "/tmp/evil"});
    proc_.Add(300, 1, "/usr/bin/vim", {"vim", "/tmp/evil"});      // only edits it
    proc_.Add(301, 1, "/usr/bin/bash", {"bash", "/tmp/evil2"});   // another file
    proc_.Add(400, 1, "/tmp/evil (deleted)", {"/tmp/evil"});      // deleted image
    proc_.Add(500, 1, "/tmp/evil", {"/tmp/evil"});                // "the agent"
    proc_.Add(600, 1, "", {});                                    // kernel thread
  }

  TempDir tmp_;
  FakeProc proc_{tmp_ / "proc"};
};

TEST_F(ProcessTreeTest, ReadsTheTable) {
  auto table = ReadProcessTable(proc_.root());
  ASSERT_EQ(table.size(), 12u);
  std::map<pid_t, ProcessInfo> by;
  for (auto& p : table) by[p.pid] = p;
  EXPECT_EQ(by[101].ppid, 100);
  EXPECT_EQ(by[101].start_time, 1101u);
  EXPECT_EQ(by[202].argv, (std::vector<std::string>{"python3", "-u", "/tmp/evil"}));
  EXPECT_TRUE(by[400].exe_deleted);
  EXPECT_EQ(by[400].exe, "/tmp/evil");
  EXPECT_EQ(by[201].cwd, "/tmp");
  EXPECT_TRUE(by[600].exe.empty());
}

TEST_F(ProcessTreeTest, KillsRunnersAndDescendantsButNeverSelfOrInit) {
  FakeSignaller sig(proc_);
  auto killed = KillProcessesRunning({{"/tmp/evil"}}, {.proc_root = proc_.root(), .self_pid = 500}, sig);
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  std::map<pid_t, std::string> reasons;
  for (const auto& k : *killed) reasons[k.pid] = k.reason;
  EXPECT_EQ(reasons, (std::map<pid_t, std::string>{{100, "executable"},
                                                   {101, "descendant"},
                                                   {102, "descendant"},
                                                   {200, "script"},
                                                   {201, "script"},
                                                   {202, "script"},
                                                   {400, "executable"}}));
  for (pid_t alive : {1, 300, 301, 500, 600}) EXPECT_TRUE(proc_.Exists(alive)) << alive;
  // Each was stopped before anything was killed (a stable snapshot).
  size_t first_kill = 0;
  while (first_kill < sig.signals.size() && sig.signals[first_kill].second != SIGKILL) ++first_kill;
  std::set<pid_t> stopped_before_kill;
  for (size_t i = 0; i < first_kill; ++i) {
    EXPECT_EQ(sig.signals[i].second, SIGSTOP);
    stopped_before_kill.insert(sig.signals[i].first);
  }
  EXPECT_EQ(stopped_before_kill.size(), reasons.size());
  for (const auto& [pid, s] : sig.signals) EXPECT_TRUE(reasons.contains(pid)) << pid;
}

TEST_F(ProcessTreeTest, ChildForkedDuringTheSnapshotIsKilledToo) {
  FakeSignaller sig(proc_);
  bool forked = false;
  sig.on_signal = [&](pid_t pid, int s) {
    if (pid == 101 && s == SIGSTOP && !forked) {
      forked = true;  // 101 forked just before it was stopped
      proc_.Add(103, 101, "/usr/bin/nc", {"nc", "-l"});
    }
  };
  auto killed = KillProcessesRunning({{"/tmp/evil"}}, {.proc_root = proc_.root(), .self_pid = 500}, sig);
  ASSERT_TRUE(killed.ok());
  EXPECT_FALSE(proc_.Exists(103));
  bool listed = false;
  for (const auto& k : *killed) listed |= k.pid == 103 && k.reason == "descendant";
  EXPECT_TRUE(listed);
}

TEST_F(ProcessTreeTest, ReportsProcessesThatSurviveSigkill) {
  FakeSignaller sig(proc_);
  sig.immortal = {101};
  auto killed = KillProcessesRunning({{"/tmp/evil"}}, {.proc_root = proc_.root(), .self_pid = 500}, sig);
  ASSERT_FALSE(killed.ok());
  EXPECT_NE(killed.status().message().find("101"), std::string::npos);
}

TEST_F(ProcessTreeTest, NothingRunningItKillsNothing) {
  FakeSignaller sig(proc_);
  auto killed = KillProcessesRunning({{"/opt/other"}}, {.proc_root = proc_.root(), .self_pid = 500}, sig);
  ASSERT_TRUE(killed.ok());
  EXPECT_TRUE(killed->empty());
  EXPECT_TRUE(sig.signals.empty());
}

TEST(HowProcessRunsTest, MatchesByInodeWhenKnown) {
  ProcessInfo p;
  p.exe = "/tmp/renamed";
  p.exe_id_known = true;
  p.exe_dev = 5;
  p.exe_ino = 77;
  EXPECT_EQ(HowProcessRuns(p, {"/tmp/evil", true, 5, 77}), "executable");
  EXPECT_EQ(HowProcessRuns(p, {"/tmp/renamed", true, 5, 78}), "");  // same name, other file
}

TEST(HowProcessRunsTest, AScriptIsJudgedByTheFileItsProcessSees) {
  ProcessInfo p;
  p.exe = "/usr/bin/bash";
  p.argv = {"bash", "/tmp/evil.sh"};
  p.cwd = "/";
  // In another mount namespace (a container, a lab host) "/tmp/evil.sh" is another file.
  p.arg_ids = {{0, 0}, {9, 1234}};
  EXPECT_EQ(HowProcessRuns(p, {"/tmp/evil.sh", true, 5, 77}), "");
  EXPECT_EQ(HowProcessRuns(p, {"/elsewhere/evil.sh", true, 9, 1234}), "script");
  // Where the process's file cannot be looked at (e.g. deleted), the path decides.
  p.arg_ids = {{0, 0}, {0, 0}};
  EXPECT_EQ(HowProcessRuns(p, {"/tmp/evil.sh", true, 5, 77}), "script");
}

}  // namespace
}  // namespace quell::agent::quarantine
