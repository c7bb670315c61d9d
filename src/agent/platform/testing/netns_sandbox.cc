#include "agent/platform/testing/netns_sandbox.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace quell::agent::test {
namespace {

Result<ino_t> NetnsInode(const char* path) {
  struct stat st {};
  if (::stat(path, &st) != 0) return ErrnoStatus(std::string("stat ") + path);
  return st.st_ino;
}

// `enter` moves the calling thread; the body runs only if that thread's namespace is no
// longer the process's (thread group leader's) one.
Status RunOnThread(const std::function<Status()>& enter, const std::function<void()>& body) {
  Status status;
  std::thread worker([&] {
    status = enter();
    if (!status.ok()) return;
    Result<ino_t> mine = NetnsInode("/proc/thread-self/ns/net");
    Result<ino_t> host = NetnsInode("/proc/self/ns/net");
    if (!mine.ok() || !host.ok() || *mine == *host) {
      status = Internal("thread did not leave the host network namespace; refusing to run");
      return;
    }
    body();
  });
  worker.join();
  return status;
}

}  // namespace

bool IsRoot() { return ::geteuid() == 0; }

Status RunInNewNetns(const std::function<void()>& body) {
  return RunOnThread(
      [] {
        if (::unshare(CLONE_NEWNET) != 0) return ErrnoStatus("unshare(CLONE_NEWNET)");
        return Status::Ok();
      },
      body);
}

Status RunInNamedNetns(const std::string& name, const std::function<void()>& body) {
  return RunOnThread(
      [&name] {
        const std::string path = "/run/netns/" + name;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return ErrnoStatus("open " + path);
        int rc = ::setns(fd, CLONE_NEWNET);
        int err = errno;
        ::close(fd);
        if (rc != 0) return ErrnoStatus("setns " + path, err);
        return Status::Ok();
      },
      body);
}

int RunQuiet(const std::string& command) {
  int rc = std::system((command + " >/dev/null 2>&1").c_str());
  if (rc == -1 || !WIFEXITED(rc)) return -1;
  return WEXITSTATUS(rc);
}

Status ScopedNetnsSet::Ip(const std::string& ns, const std::string& args) {
  const std::string command = ns.empty() ? "ip " + args : "ip -n " + ns + " " + args;
  int rc = RunQuiet(command);
  if (rc != 0) return Internal("'" + command + "' exited with " + std::to_string(rc));
  return Status::Ok();
}

Status ScopedNetnsSet::Add(const std::string& name) {
  QUELL_RETURN_IF_ERROR(Ip("", "netns add " + name));
  names_.push_back(name);
  return Status::Ok();
}

ScopedNetnsSet::~ScopedNetnsSet() {
  // Deleting a namespace destroys its interfaces, so veth peers in other namespaces go too.
  for (auto it = names_.rbegin(); it != names_.rend(); ++it) {
    if (RunQuiet("ip netns delete " + *it) != 0) {
      std::fprintf(stderr, "warning: could not delete network namespace %s\n", it->c_str());
    }
  }
}

}  // namespace quell::agent::test
