// Privileged lab: the real FanotifyWrittenFileSource and WrittenFileWatch in a PRIVATE mount
// namespace of a forked child with its own tmpfs on /tmp, so the marks never touch this
// machine's own mounts. The child reports its findings through a pipe; the parent kills it
// after a timeout. Run as root: ctest -L privileged.
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
#include <random>
#include <sstream>
#include <thread>

#include "agent/sensors/written_file_watch.h"

extern char** environ;

namespace quell::agent::sensors {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Runs argv as a separate process (so its writes are not the watch's own); returns its status.
int Spawn(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Sha256Of(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  auto h = HashFd(fd);
  close(fd);
  return h.ok() ? h->sha256 : "";
}

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
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(child, SIGKILL);
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

class WrittenFileWatchLab : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mount namespaces, fanotify)";
  }
};

#define CHECK_OR_REPORT(cond, msg)      \
  do {                                  \
    if (!(cond)) errors << msg << "\n"; \
  } while (0)

TEST_F(WrittenFileWatchLab, AFileCopiedIntoTheNamespaceIsFoundWithoutBeingRun) {
  std::string report = InPrivateMountNamespace([]() -> std::string {
    std::ostringstream errors;
    fs::create_directories("/tmp/state");
    // A unique sample (random tail), written by THIS process: its own writes are not judged.
    std::random_device rd;
    const std::string tail = std::to_string(rd()) + "-" + std::to_string(rd());
    std::ofstream("/tmp/sample.src", std::ios::binary) << "not really malware " << tail;
    const std::string sha = Sha256Of("/tmp/sample.src");

    std::mutex mu;
    std::vector<WrittenFileHit> hits;
    FanotifyWrittenFileSource source;
    WrittenFileWatch watch(
        source, nullptr,
        WrittenFileWatchOptions{
            .skip_dirs = {"/tmp/state"},
            .settle = milliseconds(20),
            .require_private_mount_namespace = true,
            .match_file = [&](const FileToMatch& f) -> std::optional<IndicatorMatch> {
              if (f.sha256 != sha) return std::nullopt;
              return IndicatorMatch{.id = "lab", .value = std::string(f.sha256),
                                    .action = IndicatorAction::kBlockAndRemediate};
            },
            .remediate = [&](const WrittenFileHit& h) {
              std::lock_guard lock(mu);
              hits.push_back(h);
            }});
    if (Status s = watch.SetActive(true); !s.ok()) return "SetActive: " + s.ToString();
    CHECK_OR_REPORT(watch.GetStats().marks >= 2, "marks " << watch.GetStats().marks);

    // This process's own write (the agent's own files) is never judged.
    std::ofstream("/tmp/own-copy", std::ios::binary) << "not really malware " << tail;
    // Another process writes copies: one in /tmp, one in the skipped state dir.
    CHECK_OR_REPORT(Spawn({"/bin/cp", "/tmp/sample.src", "/tmp/dropped"}) == 0, "cp failed");
    CHECK_OR_REPORT(Spawn({"/bin/cp", "/tmp/sample.src", "/tmp/state/kept"}) == 0, "cp failed");
    CHECK_OR_REPORT(Spawn({"/bin/sh", "-c", "echo unrelated > /tmp/other"}) == 0, "sh failed");
    for (int i = 0; i < 400; ++i) {
      {
        std::lock_guard lock(mu);
        const auto st = watch.GetStats();
        if (!hits.empty() && st.skipped_dir >= 1 && st.own >= 1 && st.hashed >= 2) break;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    {
      std::lock_guard lock(mu);
      CHECK_OR_REPORT(hits.size() == 1, "hits " << hits.size());
      if (!hits.empty()) {
        CHECK_OR_REPORT(hits[0].path == "/tmp/dropped", "path " << hits[0].path);
        CHECK_OR_REPORT(hits[0].hashes.sha256 == sha, "sha " << hits[0].hashes.sha256);
        CHECK_OR_REPORT(hits[0].pid != getpid(), "writer pid is the watch's own");
      }
    }
    const auto stats = watch.GetStats();
    CHECK_OR_REPORT(stats.own >= 1, "own writes not skipped: " << stats.own);
    CHECK_OR_REPORT(stats.skipped_dir >= 1, "state dir not skipped");
    CHECK_OR_REPORT(stats.hashed >= 2, "hashed " << stats.hashed);

    // Off: nothing is watched any more.
    if (Status s = watch.SetActive(false); !s.ok()) return "SetActive(false): " + s.ToString();
    const uint64_t events = watch.GetStats().events;
    CHECK_OR_REPORT(Spawn({"/bin/cp", "/tmp/sample.src", "/tmp/after"}) == 0, "cp failed");
    std::this_thread::sleep_for(milliseconds(200));
    CHECK_OR_REPORT(watch.GetStats().events == events, "events after deactivation");
    std::lock_guard lock(mu);
    CHECK_OR_REPORT(hits.size() == 1, "hit after deactivation");
    return errors.str();
  });
  EXPECT_EQ(report, "");
}

}  // namespace
}  // namespace quell::agent::sensors
