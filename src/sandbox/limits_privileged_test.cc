// The real cgroup and seccomp limits, as root. Each workload runs in a forked child.
#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "sandbox/cgroup_limits.h"
#include "sandbox/seccomp_policy.h"

namespace quell::sandbox {
namespace {

#define REQUIRE_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (cgroups, seccomp)"

std::string UniqueName(const char* what) {
  static int n = 0;
  return std::string("test-") + what + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

// Forks a child that waits until the parent put it into `group`, then exits with body().
template <typename Body>
pid_t ForkInto(const CgroupLimits& group, Body body) {
  int go[2];
  EXPECT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(go[1]);
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(100);
    ::_exit(body());
  }
  ::close(go[0]);
  EXPECT_TRUE(group.AddProcess(pid).ok());
  EXPECT_EQ(::write(go[1], "g", 1), 1);
  ::close(go[1]);
  return pid;
}

int WaitStatus(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

TEST(CgroupLimitsPrivilegedTest, PidsLimitRefusesForksAndRemoveKillsWhatIsLeft) {
  REQUIRE_ROOT();
  auto g = CgroupLimits::Create(UniqueName("pids"), {64ull << 20, 8, 1.0});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  const std::vector<std::string> dirs = g->directories();
  EXPECT_FALSE(g->ReadCounters().pids_limit_hit);
  pid_t pid = ForkInto(*g, [] {
    int refused = 0;
    for (int i = 0; i < 20; ++i) {
      pid_t c = ::fork();
      if (c == 0) {
        ::pause();  // left behind on purpose
        ::_exit(0);
      }
      if (c < 0 && errno == EAGAIN) ++refused;
    }
    return refused >= 12 ? 0 : 1;  // at most 7 more tasks fit beside this one
  });
  int status = WaitStatus(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(g->ReadCounters().pids_limit_hit);
  EXPECT_FALSE(g->ReadCounters().memory_limit_hit);
  // The paused orphans are still in the group: Remove kills them, or rmdir would fail.
  ASSERT_TRUE(g->Remove().ok());
  for (const std::string& d : dirs) EXPECT_FALSE(std::filesystem::exists(d)) << d;
}

TEST(CgroupLimitsPrivilegedTest, MemoryHogIsKilledAndReported) {
  REQUIRE_ROOT();
  auto g = CgroupLimits::Create(UniqueName("mem"), {32ull << 20, 16, 1.0});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  pid_t pid = ForkInto(*g, [] {
    for (int i = 0; i < 64; ++i) {  // 256 MiB, touched
      char* p = static_cast<char*>(std::malloc(4 << 20));
      if (p == nullptr) return 2;
      std::memset(p, 1, 4 << 20);
    }
    return 0;
  });
  int status = WaitStatus(pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(g->ReadCounters().memory_limit_hit);
  EXPECT_FALSE(g->ReadCounters().pids_limit_hit);
}

TEST(CgroupLimitsPrivilegedTest, GroupsLiveUnderTheQuellSandboxParentAndGoAway) {
  REQUIRE_ROOT();
  std::vector<std::string> dirs;
  {
    auto g = CgroupLimits::Create(UniqueName("scope"), {});
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    dirs = g->directories();
    ASSERT_FALSE(dirs.empty());
    for (const std::string& d : dirs) {
      EXPECT_NE(d.find(std::string("/") + kCgroupParent + "/test-scope-"), std::string::npos) << d;
      EXPECT_TRUE(std::filesystem::is_directory(d)) << d;
    }
  }  // the destructor removes them
  for (const std::string& d : dirs) EXPECT_FALSE(std::filesystem::exists(d)) << d;
}

// Runs `body` in a child under the seccomp policy; returns its exit status.
template <typename Body>
int UnderPolicy(Body body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!LoadSeccompPolicy().ok()) ::_exit(100);
    ::_exit(body());
  }
  int status = WaitStatus(pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

int Errno(long rc) { return rc == -1 ? errno : 0; }

TEST(SeccompPolicyPrivilegedTest, RefusedCallsGetEperm) {
  REQUIRE_ROOT();
  struct Call {
    const char* name;
    long nr;
  };
  for (Call c :
       {Call{"mount", SYS_mount}, Call{"ptrace", SYS_ptrace}, Call{"init_module", SYS_init_module},
        Call{"finit_module", SYS_finit_module}, Call{"kexec_load", SYS_kexec_load},
        Call{"bpf", SYS_bpf}, Call{"unshare", SYS_unshare}, Call{"setns", SYS_setns},
        Call{"pivot_root", SYS_pivot_root}, Call{"perf_event_open", SYS_perf_event_open}}) {
    // Arguments that would otherwise fail differently (EFAULT/EINVAL/ENOENT), never EPERM,
    // because this child is root on the host.
    int got = UnderPolicy([&] { return Errno(::syscall(c.nr, 0, 0, 0, 0, 0)); });
    EXPECT_EQ(got, EPERM) << c.name << " gave " << std::strerror(got);
  }
}

TEST(SeccompPolicyPrivilegedTest, OrdinaryWorkStillRuns) {
  REQUIRE_ROOT();
  int got = UnderPolicy([] {
    pid_t child = ::fork();
    if (child == 0) {
      ::execl("/bin/sh", "sh", "-c", "echo ok > /dev/null && exit 7", nullptr);
      ::_exit(1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  });
  EXPECT_EQ(got, 7);
}

TEST(SeccompPolicyTest, ListsTheCallsTheContractNames) {
  auto denied = SeccompDeniedCalls();
  for (std::string_view name :
       {"init_module", "finit_module", "kexec_load", "mount", "ptrace", "bpf"}) {
    EXPECT_NE(std::find(denied.begin(), denied.end(), name), denied.end()) << name;
  }
}

}  // namespace
}  // namespace quell::sandbox
