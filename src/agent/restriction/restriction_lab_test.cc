// Privileged lab: the real FanotifyExecGate and RestrictionController in a PRIVATE mount
// namespace of a forked child, so the marks never touch this machine's own mounts. The child
// reports its findings through a pipe; the parent kills it (releasing every waiter) after a
// timeout. Run as root: ctest -L privileged.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "agent/platform/exec_gate_fanotify.h"
#include "agent/restriction/restriction_controller.h"
#include "common/files.h"

extern char** environ;

namespace quell::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class CountingSink final : public DetectionSink {
 public:
  void Report(Detection d) override {
    std::lock_guard lock(mu);
    titles.push_back(d.title);
  }
  std::mutex mu;
  std::vector<std::string> titles;
};

// Runs argv; returns the exit status, or -errno when execve itself failed (EPERM = denied).
int Spawn(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -rc;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void Copy(const std::string& from, const std::string& to, const std::string& append = "") {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  if (!append.empty()) std::ofstream(to, std::ios::app) << append;
  fs::permissions(to, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
}

std::string Sha256OfFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  auto d = DigestFd(fd);
  close(fd);
  return d.ok() ? d->sha256 : "";
}

// Runs `body` in a child with its own mount namespace (private propagation) and a private
// tmpfs on /tmp. Returns what the body reported ("" = all good).
std::string InPrivateMountNamespace(const std::function<std::string()>& body,
                                    std::chrono::seconds timeout = std::chrono::seconds(60)) {
  int p[2];
  if (pipe(p) != 0) return "pipe failed";
  pid_t child = fork();
  if (child == 0) {
    close(p[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::string out;
    if (unshare(CLONE_NEWNS) != 0) {
      out = "unshare(CLONE_NEWNS) failed";
    } else if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      out = "making / private failed";
    } else if (mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") != 0) {
      out = "mounting a private /tmp failed";
    } else {
      out = body();
    }
    (void)!write(p[1], out.data(), out.size());
    _exit(0);
  }
  close(p[1]);
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(child, SIGKILL);  // closes its fanotify fd: every waiter is released
      out += "\nTIMEOUT";
      break;
    }
    pollfd pfd{p[0], POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(p[0]);
  waitpid(child, nullptr, 0);
  return out;
}

class RestrictionLab : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mount namespaces, fanotify)";
    if (!fs::exists("/var/lib/dpkg/info")) GTEST_SKIP() << "not a Debian system";
  }
};

#define CHECK_OR_REPORT(cond, msg) \
  do {                             \
    if (!(cond)) errors << msg << "\n"; \
  } while (0)

TEST_F(RestrictionLab, EnforcesOnThePrivateNamespaceOnly) {
  std::string report = InPrivateMountNamespace([]() -> std::string {
    std::ostringstream errors;
    fs::create_directories("/tmp/state");
    Copy("/usr/bin/true", "/tmp/true-copy");
    Copy("/usr/bin/true", "/tmp/allowed", std::string("\0allow-listed", 13));
    Copy("/usr/bin/true", "/tmp/compiled-elsewhere", "x");
    std::ofstream("/tmp/script.sh") << "#!/bin/sh\nexit 7\n";
    fs::permissions("/tmp/script.sh", fs::perms::owner_all);
    // A modified COPY of a package binary bind-mounted over the package path (inside this
    // namespace only), before and after the restriction starts.
    Copy("/usr/bin/tac", "/tmp/tac-modified", "tampered");
    Copy("/usr/bin/tr", "/tmp/tr-modified", "tampered");
    if (mount("/tmp/tac-modified", "/usr/bin/tac", nullptr, MS_BIND, nullptr) != 0) {
      return "bind mount over /usr/bin/tac failed";
    }

    FanotifyExecGate gate;
    CountingSink sink;
    RestrictionController controller(
        gate, &sink,
        RestrictionOptions{.state_path = "/tmp/state/restriction.json",
                           .allow_sha256 = {Sha256OfFile("/tmp/allowed")},
                           .require_private_mount_namespace = true});
    auto r = controller.Restrict(RestrictionMode::kEnforce);
    if (!r.ok()) return "Restrict: " + r.status().ToString();

    CHECK_OR_REPORT(Spawn({"/bin/ls", "/"}) == 0, "/bin/ls denied");
    CHECK_OR_REPORT(Spawn({"/usr/bin/true"}) == 0, "/usr/bin/true denied");
    CHECK_OR_REPORT(Spawn({"/tmp/true-copy"}) == -EPERM, "copy of true in /tmp not denied");
    CHECK_OR_REPORT(Spawn({"/tmp/compiled-elsewhere"}) == -EPERM, "unknown program not denied");
    CHECK_OR_REPORT(Spawn({"/usr/bin/tac", "/dev/null"}) == -EPERM,
                    "modified package binary (bind mount before restrict) not denied");
    CHECK_OR_REPORT(Spawn({"/tmp/allowed"}) == 0, "allow-listed hash denied");
    CHECK_OR_REPORT(Spawn({"/tmp/script.sh"}) == -EPERM, "./script.sh not denied");
    // Documented limit: an approved interpreter may still read and run a script.
    CHECK_OR_REPORT(Spawn({"/bin/sh", "/tmp/script.sh"}) == 7, "sh script.sh did not run");

    // A mount made while restricted is marked through the mount-table watch.
    const uint64_t marks = controller.GetStats().marks;
    if (mount("/tmp/tr-modified", "/usr/bin/tr", nullptr, MS_BIND, nullptr) != 0) {
      return "bind mount over /usr/bin/tr failed";
    }
    for (int i = 0; i < 200 && controller.GetStats().marks <= marks; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    CHECK_OR_REPORT(controller.GetStats().marks > marks, "new mount was not marked");
    CHECK_OR_REPORT(Spawn({"/usr/bin/tr", "a", "b"}) == -EPERM,
                    "modified package binary (bind mount during restriction) not denied");

    const auto stats = controller.GetStats();
    CHECK_OR_REPORT(stats.denied >= 5, "denied count " << stats.denied);
    {
      std::lock_guard lock(sink.mu);
      CHECK_OR_REPORT(sink.titles.size() >= 5, "reports " << sink.titles.size());
    }
    // Steady state is cached: run the same approved binary again.
    const uint64_t hits = stats.cache_hits;
    Spawn({"/usr/bin/true"});
    CHECK_OR_REPORT(controller.GetStats().cache_hits > hits, "second exec was not a cache hit");

    auto u = controller.Unrestrict();
    CHECK_OR_REPORT(u.ok(), "Unrestrict failed");
    CHECK_OR_REPORT(Spawn({"/tmp/true-copy"}) == 0, "copy still denied after unrestrict");
    CHECK_OR_REPORT(Spawn({"/tmp/script.sh"}) == 7, "script still denied after unrestrict");
    umount2("/usr/bin/tr", MNT_DETACH);
    umount2("/usr/bin/tac", MNT_DETACH);
    return errors.str();
  });
  EXPECT_EQ(report, "");
}

TEST_F(RestrictionLab, AgentKilledWhileRestrictingLeavesExecutionWorking) {
  std::string report = InPrivateMountNamespace([]() -> std::string {
    std::ostringstream errors;
    fs::create_directories("/tmp/state");
    Copy("/usr/bin/true", "/tmp/true-copy");
    int ready[2];
    if (pipe(ready) != 0) return "pipe";
    pid_t agent = fork();
    if (agent == 0) {  // the "agent": restricts, says so, waits to be killed
      FanotifyExecGate gate;
      RestrictionController controller(
          gate, nullptr, RestrictionOptions{.state_path = "/tmp/state/restriction.json",
                                            .require_private_mount_namespace = true});
      char ok = controller.Restrict(RestrictionMode::kEnforce).ok() ? '1' : '0';
      (void)!write(ready[1], &ok, 1);
      for (;;) pause();
    }
    char ok = '0';
    (void)!read(ready[0], &ok, 1);
    if (ok != '1') {
      kill(agent, SIGKILL);
      waitpid(agent, nullptr, 0);
      return "agent could not restrict";
    }
    CHECK_OR_REPORT(Spawn({"/tmp/true-copy"}) == -EPERM, "not restricted before the kill");
    kill(agent, SIGKILL);
    waitpid(agent, nullptr, 0);
    CHECK_OR_REPORT(Spawn({"/tmp/true-copy"}) == 0, "exec blocked after the agent died");

    // The state survived: a restarted controller restores the restriction.
    FanotifyExecGate gate;
    RestrictionController restarted(
        gate, nullptr, RestrictionOptions{.state_path = "/tmp/state/restriction.json",
                                          .require_private_mount_namespace = true});
    Status s = restarted.Restore();
    CHECK_OR_REPORT(s.ok(), "Restore: " << s.ToString());
    CHECK_OR_REPORT(Spawn({"/tmp/true-copy"}) == -EPERM, "restriction not back after restart");
    return errors.str();
  });
  EXPECT_EQ(report, "");
}

// File indicators with the real gate and no restriction: a Block hash indicator denies exactly
// that file; everything else (packaged or not) runs; without blocking indicators the gate is
// closed again.
TEST_F(RestrictionLab, BlockHashIndicatorDeniesWithoutRestriction) {
  std::string report = InPrivateMountNamespace([]() -> std::string {
    std::ostringstream errors;
    fs::create_directories("/tmp/state");
    Copy("/usr/bin/true", "/tmp/evil", "indicator-lab-evil");
    Copy("/usr/bin/true", "/tmp/other", "indicator-lab-other");
    FakeClock clock;
    IndicatorSet set(clock);
    quell::v1::Indicator block;
    block.set_id("lab-1");
    block.set_type("FileSha256");
    block.set_value(Sha256OfFile("/tmp/evil"));
    block.set_action("Block");
    block.set_generate_alert(true);
    if (!set.Upsert(block).ok()) return "Upsert failed";
    FanotifyExecGate gate;
    CountingSink sink;
    RestrictionController controller(
        gate, &sink,
        RestrictionOptions{.state_path = "/tmp/state/restriction.json",
                           .require_private_mount_namespace = true,
                           .clock = &clock,
                           .match_file_indicator = [&set](int, const std::string& a, const std::string& b,
                                                          const std::string& c) {
                             return set.MatchFile(a, b, c);
                           }});
    Status s = controller.SetIndicatorGate(true);
    if (!s.ok()) return "SetIndicatorGate: " + s.ToString();
    CHECK_OR_REPORT(Spawn({"/tmp/evil"}) == -EPERM, "blocked hash was not denied");
    CHECK_OR_REPORT(Spawn({"/tmp/other"}) == 0, "an unlisted program was denied");
    CHECK_OR_REPORT(Spawn({"/usr/bin/true"}) == 0, "/usr/bin/true denied");
    CHECK_OR_REPORT(Spawn({"/tmp/evil"}) == -EPERM, "blocked hash ran the second time");
    CHECK_OR_REPORT(controller.GetStats().indicator_blocked == 2,
                    "indicator_blocked " << controller.GetStats().indicator_blocked);
    {
      std::lock_guard lock(sink.mu);
      CHECK_OR_REPORT(sink.titles.size() == 1, "reports " << sink.titles.size());
    }
    s = controller.SetIndicatorGate(false);
    CHECK_OR_REPORT(s.ok() && !gate.IsOpen(), "gate not closed");
    CHECK_OR_REPORT(Spawn({"/tmp/evil"}) == 0, "still denied after the gate closed");
    return errors.str();
  });
  EXPECT_EQ(report, "");
}

TEST_F(RestrictionLab, GuardRefusesTheInitialMountNamespace) {
  FanotifyExecGate gate;
  RestrictionController controller(
      gate, nullptr, RestrictionOptions{.state_path = "/nonexistent/restriction.json",
                                        .require_private_mount_namespace = true});
  auto r = controller.Restrict(RestrictionMode::kEnforce);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
  EXPECT_FALSE(gate.IsOpen());
}

}  // namespace
}  // namespace quell::agent
