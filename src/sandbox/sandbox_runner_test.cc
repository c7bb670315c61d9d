// Whole detonations through RunSandbox, as root: limits stop what they must, escapes fail,
// and nothing is left on the host afterwards.
#include "sandbox/sandbox_runner.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/hash.h"
#include "common/testing/temp_dir.h"
#include "common/unique_fd.h"
#include "sandbox/cgroup_limits.h"

namespace quell::sandbox {
namespace {

using std::chrono::steady_clock;

#define REQUIRE_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, cgroups, mounts)"

std::set<std::string> DirEntries(const std::string& dir, const std::string& prefix = "") {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(prefix)) out.insert(dir + "/" + name);
  }
  return out;
}

// What the detonations of supervisor `pid` could leave on the host. Everything a run makes
// carries the supervisor's pid in its name, so runs of other tests (ctest -j) do not count.
struct HostState {
  std::set<std::string> cgroups, mounts, temp_dirs, processes;
  bool empty() const {
    return cgroups.empty() && mounts.empty() && temp_dirs.empty() && processes.empty();
  }
};

HostState Leftovers(pid_t supervisor) {
  HostState s;
  const std::string tag = std::to_string(supervisor) + "-";
  for (const char* parent : {"/sys/fs/cgroup/memory/", "/sys/fs/cgroup/pids/",
                             "/sys/fs/cgroup/cpu/", "/sys/fs/cgroup/"}) {
    auto e = DirEntries(std::string(parent) + kCgroupParent, "run-" + tag);
    s.cgroups.insert(e.begin(), e.end());
  }
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    if (line.find("quell-sandbox-" + tag) != std::string::npos) s.mounts.insert(line);
  }
  s.temp_dirs = DirEntries("/tmp", "quell-sandbox-" + tag);
  // A process of the sandbox stays in its cgroups (it cannot write the host's cgroup files).
  for (const std::string& dir : DirEntries("/proc")) {
    std::string name = dir.substr(6);
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream cgroup(dir + "/cgroup");
    for (std::string line; std::getline(cgroup, line);) {
      if (line.find("/run-" + tag) != std::string::npos) s.processes.insert(dir);
    }
  }
  return s;
}

void ExpectNothingLeft(pid_t supervisor) {
  HostState left = Leftovers(supervisor);
  for (const auto& c : left.cgroups) ADD_FAILURE() << "cgroup left: " << c;
  for (const auto& m : left.mounts) ADD_FAILURE() << "mount left: " << m;
  for (const auto& d : left.temp_dirs) ADD_FAILURE() << "dir left: " << d;
  for (const auto& p : left.processes) ADD_FAILURE() << "process left: " << p;
}

class SandboxRunnerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (::geteuid() == 0) ExpectNothingLeft(::getpid());
  }

  SandboxOptions Sample(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    SandboxOptions o;
    o.sample_path = dir_ / name;
    o.wall_clock = std::chrono::seconds(20);
    return o;
  }

  testing::TempDir dir_;
};

TEST_F(SandboxRunnerTest, UnsupportedFileIsRefusedBeforeAnythingStarts) {
  std::ofstream(dir_ / "cat.png") << "\x89PNG\r\n\x1a\n....";
  SandboxOptions o;
  o.sample_path = dir_ / "cat.png";
  auto r = RunSandbox(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("unsupported file type"), std::string::npos);
}

TEST_F(SandboxRunnerTest, HarmlessScriptRunsFastAndItsFilesAreCollected) {
  REQUIRE_ROOT();
  auto o = Sample("hello.sh",
                  "#!/bin/sh\necho hello > /tmp/out.txt\nmkdir -p /root/.x\n"
                  "echo hi > /root/.x/y\nexit 3\n");
  std::vector<std::string> stages;
  auto r = RunSandbox(o, [&](std::string_view s) { stages.emplace_back(s); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const RunOutcome& out = r->outcome;
  EXPECT_EQ(out.exit_code, 3);
  EXPECT_FALSE(out.timed_out || out.memory_limit_hit || out.pids_limit_hit);
  EXPECT_GT(out.startup_ms, 0);
  EXPECT_LT(out.startup_ms, 200) << "start-up goal: < 200 ms to the sample's first instruction";
  std::printf("startup_ms=%lld duration_ms=%lld\n", static_cast<long long>(out.startup_ms),
              static_cast<long long>(out.duration_ms));
  ASSERT_EQ(r->dropped_files.size(), 2u);  // the sample itself is not "dropped"
  EXPECT_EQ(r->dropped_files[0].path, "/root/.x/y");
  EXPECT_EQ(r->dropped_files[1].path, "/tmp/out.txt");
  EXPECT_EQ(r->dropped_files[1].sha256, Sha256Hex("hello\n"));
  EXPECT_FALSE(r->trace.processes.empty());
  EXPECT_EQ(stages, (std::vector<std::string>{"starting", "sample running",
                                              "collecting dropped files", "cleaning up"}));
}

TEST_F(SandboxRunnerTest, ForkBombIsStoppedByThePidsLimit) {
  REQUIRE_ROOT();
  auto o = Sample("bomb.sh", "#!/bin/sh\nf(){ f|f& }; f\n");
  o.max_pids = 64;
  o.wall_clock = std::chrono::seconds(8);
  const auto t0 = steady_clock::now();
  auto r = RunSandbox(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->outcome.pids_limit_hit);
  EXPECT_LT(steady_clock::now() - t0, std::chrono::seconds(11));
}

TEST_F(SandboxRunnerTest, MemoryHogIsKilledByTheMemoryLimit) {
  REQUIRE_ROOT();
  auto o = Sample("hog.py", "#!/usr/bin/python3\nx = b'\\x01' * (2 << 30)\nprint(len(x))\n");
  o.memory_bytes = 64ull << 20;
  auto r = RunSandbox(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->outcome.memory_limit_hit);
  EXPECT_EQ(r->outcome.killed_by, SIGKILL);
  EXPECT_FALSE(r->outcome.timed_out);
}

TEST_F(SandboxRunnerTest, WallClockLimitEndsTheRun) {
  REQUIRE_ROOT();
  auto o = Sample("sleepy.sh", "#!/bin/sh\nsleep 100\n");
  o.wall_clock = std::chrono::seconds(2);
  const auto t0 = steady_clock::now();
  auto r = RunSandbox(o);
  const auto took = steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->outcome.timed_out);
  EXPECT_EQ(r->outcome.killed_by, SIGKILL);
  EXPECT_GE(r->outcome.duration_ms, 1900);
  EXPECT_LT(took, std::chrono::milliseconds(3000));
}

TEST_F(SandboxRunnerTest, EscapesFail) {
  REQUIRE_ROOT();
  // A listener on the host's loopback the sample tries to reach.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  const std::string host_file = dir_ / "escaped.txt";

  std::ostringstream py;
  py << "#!/usr/bin/python3\nimport os, socket, sys\nbits = 0\n"
     << "for p in ['" << host_file << "', '/etc/quell-escape-probe', '/usr/quell-escape-probe']:\n"
     << "    try:\n        os.makedirs(os.path.dirname(p), exist_ok=True)\n"
     << "        open(p, 'w').write('escaped')\n    except OSError:\n        pass\n"
     << "try:\n    s = socket.create_connection(('127.0.0.1', " << port << "), timeout=2)\n"
     << "    s.sendall(b'escape-probe')\n    s.close()\nexcept OSError:\n    pass\n"
     << "pids = [int(d) for d in os.listdir('/proc') if d.isdigit()]\n"
     << "if " << ::getpid() << " in pids: bits |= 1\n"
     << "if " << ::getppid() << " in pids: bits |= 2\n"
     << "if os.getpid() > 10: bits |= 4\n"
     << "if len(pids) > 5: bits |= 8\n"
     << "sys.exit(bits)\n";
  auto o = Sample("escape.py", py.str());
  auto r = RunSandbox(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome.exit_code, 0) << "bit 1/2: host pids visible, 4: not a low pid, 8: "
                                        "more processes than its own";
  EXPECT_FALSE(std::filesystem::exists(host_file));
  EXPECT_FALSE(std::filesystem::exists("/etc/quell-escape-probe"));
  EXPECT_FALSE(std::filesystem::exists("/usr/quell-escape-probe"));
  EXPECT_LT(::accept(listener.get(), nullptr, nullptr), 0) << "the host listener was reached";
  // The attempt went to the fake network instead.
  bool recorded = false;
  for (const TcpSessionRecord& t : r->network.tcp) {
    recorded |= t.address == "127.0.0.1" && t.port == port && t.first_bytes == "escape-probe";
  }
  EXPECT_TRUE(recorded);
}

TEST_F(SandboxRunnerTest, SeccompRefusesWhatASampleNeverNeeds) {
  REQUIRE_ROOT();
  auto o = Sample("calls.py",
                  "#!/usr/bin/python3\nimport ctypes, sys\n"
                  "libc = ctypes.CDLL(None, use_errno=True)\nbits = 0\n"
                  "for i, nr in enumerate([165, 101, 175, 246, 321]):  "
                  "# mount ptrace init_module kexec_load bpf\n"
                  "    ctypes.set_errno(0)\n"
                  "    if libc.syscall(nr, 0, 0, 0, 0, 0) == -1 and ctypes.get_errno() == 1:\n"
                  "        bits |= 1 << i\n"
                  "sys.exit(bits)\n");
  auto r = RunSandbox(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->outcome.exit_code, 31)
      << "each bit: mount, ptrace, init_module, kexec_load, bpf got EPERM";
  std::set<std::string> recorded;
  for (const PrivilegedCall& c : r->trace.privileged_calls) {
    if (c.result == -EPERM) recorded.insert(c.call);
  }
  for (const char* call : {"mount", "ptrace", "init_module", "kexec_load", "bpf"}) {
    EXPECT_TRUE(recorded.count(call)) << call << " attempt not in the trace";
  }
}

TEST_F(SandboxRunnerTest, SigtermMidRunStopsAndRemovesEverything) {
  REQUIRE_ROOT();
  auto o = Sample("long.sh", "#!/bin/sh\nsleep 100 &\nsleep 100\n");
  o.wall_clock = std::chrono::seconds(60);
  // The supervisor is a process of its own here: RunSandbox wants a single-threaded caller.
  pid_t supervisor = ::fork();
  if (supervisor == 0) {
    auto r = RunSandbox(o);
    ::_exit(!r.ok() && r.status().code() == StatusCode::kCancelled ? 0 : 1);
  }
  // Wait until its cgroup exists and the sample had a moment to start.
  bool started = false;
  for (int i = 0; i < 300 && !started; ++i) {
    started = !Leftovers(supervisor).cgroups.empty();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(started);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(Leftovers(supervisor).processes.empty()) << "the sample should be running now";
  const auto t0 = steady_clock::now();
  ::kill(supervisor, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(supervisor, &status, 0), supervisor);
  EXPECT_LT(steady_clock::now() - t0, std::chrono::seconds(3));
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "RunSandbox did not return Cancelled";
  ExpectNothingLeft(supervisor);
}

}  // namespace
}  // namespace quell::sandbox
