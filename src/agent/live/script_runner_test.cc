#include "agent/live/script_runner.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "agent/live/script_args.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::live {
namespace {

using namespace std::chrono_literals;

class ScriptRunnerTest : public ::testing::Test {
 protected:
  // Writes an executable script into the temp dir and returns its path.
  std::string Script(const std::string& name, const std::string& body, unsigned mode = 0700) {
    std::string path = dir_ / name;
    EXPECT_TRUE(WriteFileAtomic(path, body, mode).ok());
    return path;
  }
  ScriptRunOptions Options(std::chrono::milliseconds limit = 10s, uint64_t cap = 1 << 20) {
    EXPECT_TRUE(MakeDirs(dir_ / "cwd").ok());
    return {.cwd = dir_ / "cwd", .stdout_path = dir_ / "out", .stderr_path = dir_ / "err",
            .max_output_bytes = cap, .time_limit = limit};
  }
  std::string Out() { return ReadFile(dir_ / "out").value(); }
  std::string Err() { return ReadFile(dir_ / "err").value(); }

  testing::TempDir dir_;
};

TEST_F(ScriptRunnerTest, ReportsExitCodesAndSeparatesTheStreams) {
  auto ok = RunScript(Script("ok.sh", "#!/bin/sh\necho out; echo err >&2; exit 0\n"), {}, Options());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->exit_code, 0);
  EXPECT_EQ(Out(), "out\n");
  EXPECT_EQ(Err(), "err\n");
  EXPECT_FALSE(ok->timed_out);

  auto three = RunScript(Script("three.sh", "#!/bin/sh\nexit 3\n"), {}, Options());
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(three->exit_code, 3);

  auto killed = RunScript(Script("kill.sh", "#!/bin/sh\nkill -TERM $$\n"), {}, Options());
  ASSERT_TRUE(killed.ok());
  EXPECT_FALSE(killed->exit_code.has_value());
  EXPECT_EQ(killed->signal, SIGTERM);
}

TEST_F(ScriptRunnerTest, ArgumentsArriveIntactWithoutAShell) {
  auto args = SplitScriptArgs("one 'two words' \"*\" 'a\\b' ''");
  ASSERT_TRUE(args.ok());
  auto r = RunScript(Script("args.sh", "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n"),
                     *args, Options());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Out(), "[one]\n[two words]\n[*]\n[a\\b]\n[]\n");
}

TEST_F(ScriptRunnerTest, RunsInTheWorkingDirectoryWithAMinimalEnvironment) {
  ::setenv("QUELL_SECRET_FOR_TEST", "x", 1);
  auto r = RunScript(Script("env.sh", "#!/bin/sh\npwd\nenv | sort\nread line; echo \"read=$?\"\n"),
                     {}, Options());
  ::unsetenv("QUELL_SECRET_FOR_TEST");
  ASSERT_TRUE(r.ok());
  const std::string out = Out();
  EXPECT_EQ(out.substr(0, out.find('\n')), dir_ / "cwd");
  EXPECT_NE(out.find("HOME=/root\n"), std::string::npos);
  EXPECT_NE(out.find("LANG=C.UTF-8\n"), std::string::npos);
  EXPECT_NE(out.find("PATH=/usr/local/sbin:"), std::string::npos);
  EXPECT_EQ(out.find("QUELL_SECRET_FOR_TEST"), std::string::npos);
  EXPECT_NE(out.find("read=1\n"), std::string::npos);  // stdin is /dev/null: EOF at once
}

TEST_F(ScriptRunnerTest, AFileWithoutShebangRunsWithBinSh) {
  auto r = RunScript(Script("plain", "echo plain \"$1\"\n"), {"arg"}, Options());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(Out(), "plain arg\n");
}

TEST_F(ScriptRunnerTest, CannotStartIsAStatusNotAResult) {
  auto missing = RunScript(dir_ / "nope", {}, Options());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto not_exec = RunScript(Script("noexec.sh", "#!/bin/sh\n", 0600), {}, Options());
  EXPECT_EQ(not_exec.status().code(), StatusCode::kPermissionDenied);  // even root needs an x bit
  auto opts = Options();
  opts.cwd = dir_ / "no-such-dir";
  auto bad_cwd = RunScript(Script("ok.sh", "#!/bin/sh\n"), {}, opts);
  EXPECT_EQ(bad_cwd.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad_cwd.status().message().find("no-such-dir"), std::string::npos);
}

// The state of `pid` from /proc/<pid>/stat: 0 when it is gone.
char ProcState(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return 0;
  size_t paren = stat->rfind(')');
  return paren + 2 < stat->size() ? (*stat)[paren + 2] : 0;
}

TEST_F(ScriptRunnerTest, TimeLimitKillsTheWholeGroupIncludingGrandchildren) {
  const std::string pidfile = dir_ / "grandchild.pid";
  auto start = std::chrono::steady_clock::now();
  auto r = RunScript(Script("hang.sh", "#!/bin/sh\necho started\nsleep 60 &\necho $! > " + pidfile +
                                           "\nwait\n"),
                     {}, Options(400ms));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_GE(r->duration, 400ms);
  EXPECT_EQ(Out(), "started\n");
  const pid_t grandchild = std::stoi(ReadFile(pidfile).value());
  // Killed: gone, or a zombie waiting for a reaper that is not us.
  for (int i = 0; i < 100 && ProcState(grandchild) != 0 && ProcState(grandchild) != 'Z'; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const char state = ProcState(grandchild);
  EXPECT_TRUE(state == 0 || state == 'Z') << "grandchild state " << state;
}

TEST_F(ScriptRunnerTest, StopTokenCancelsPromptly) {
  std::stop_source stop;
  std::jthread canceller([&] {
    std::this_thread::sleep_for(200ms);
    stop.request_stop();
  });
  auto start = std::chrono::steady_clock::now();
  auto r = RunScript(Script("hang.sh", "#!/bin/sh\nsleep 60\n"), {}, Options(60s), stop.get_token());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(ScriptRunnerTest, OutputIsCutAtTheCapWhileTheScriptRunsToItsEnd) {
  auto r = RunScript(Script("big.sh", "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' x\n"
                                      "echo e >&2\necho done > done.txt\nexit 4\n"),
                     {}, Options(10s, 1000));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 4);  // not killed for writing too much
  EXPECT_TRUE(r->stdout_truncated);
  EXPECT_FALSE(r->stderr_truncated);
  EXPECT_EQ(Out(), std::string(1000, 'x'));
  EXPECT_EQ(Err(), "e\n");
  EXPECT_EQ(ReadFile(dir_ / "cwd/done.txt").value(), "done\n");
}

TEST_F(ScriptRunnerTest, StdoutIsToldWhileTheScriptStillRuns) {
  // The script waits for a file that the output callback creates: it only finishes if its
  // first line was handed over before it ended.
  ScriptRunOptions options = Options();
  std::string seen;
  const std::string go = dir_ / "cwd/go";
  options.on_stdout = [&](std::string_view piece) {
    seen += piece;
    if (seen.find("first\n") != std::string::npos) (void)WriteFileAtomic(go, "", 0600);
  };
  auto r = RunScript(Script("wait.sh", "#!/bin/sh\necho first\n"
                                       "i=0; while [ ! -e go ] && [ $i -lt 50 ]; do "
                                       "sleep 0.1; i=$((i+1)); done\n"
                                       "[ -e go ] && echo second\n"),
                     {}, options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(seen, "first\nsecond\n");
  EXPECT_EQ(Out(), "first\nsecond\n");
}

TEST_F(ScriptRunnerTest, IgnoredSignalsInTheAgentAreNotInherited) {
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old);
  auto r = RunScript(Script("sigpipe.sh", "#!/bin/sh\nyes | head -c 1 >/dev/null\n"
                                          "grep SigIgn /proc/self/status\n"),
                     {}, Options());
  ::sigaction(SIGPIPE, &old, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0);
  // No standard signal (1-31) is ignored in the script. Signals 32 and 33 are glibc's own
  // (thread cancellation, setxid): a process cannot change them, so a test runner that
  // ignores them passes that on to every child, ours included.
  const std::string line = Out();
  ASSERT_TRUE(line.starts_with("SigIgn:\t")) << line;
  const uint64_t ignored = std::stoull(line.substr(8), nullptr, 16);
  EXPECT_EQ(ignored & 0x7fffffffull, 0u) << line;
}

}  // namespace
}  // namespace quell::agent::live
