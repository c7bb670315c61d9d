#include "server/analysis/sandbox_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "common/unique_fd.h"

extern char** environ;

namespace quell::server {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kLastLinesBytes = 4096;
constexpr auto kTermGrace = std::chrono::seconds(10);

void KeepTail(std::string& tail, std::string_view line) {
  tail.append(line);
  tail.push_back('\n');
  if (tail.size() > kLastLinesBytes) tail.erase(0, tail.size() - kLastLinesBytes);
}

}  // namespace

Result<SandboxExit> RunSandboxCommand(const SandboxCommand& command,
                                      const std::function<void(std::string_view line)>& on_line,
                                      std::stop_token stop) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(command.binary.c_str()));
  for (const std::string& a : command.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int spawned = ::posix_spawn(&pid, command.binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.Reset();
  if (spawned != 0) return ErrnoStatus("start " + command.binary, spawned);

  ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
  SandboxExit exit;
  std::string pending;
  auto take_lines = [&](bool all) {
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      KeepTail(exit.last_lines, line);
      if (on_line) on_line(line);
    }
    if (all || pending.size() > kLastLinesBytes) {  // a line without end: as it is
      if (!pending.empty()) {
        KeepTail(exit.last_lines, pending);
        if (on_line) on_line(pending);
      }
      pending.clear();
    }
  };
  auto drain = [&] {
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(read_end.get(), buffer, sizeof buffer)) > 0) {
      pending.append(buffer, static_cast<size_t>(n));
      take_lines(false);
    }
  };

  const auto started = Clock::now();
  std::optional<Clock::time_point> terminated;
  int status = 0;
  // Ends when the child is reaped, not when the pipe closes: something the child left behind
  // could hold the write end open.
  for (;;) {
    const bool overdue = Clock::now() - started > command.deadline;
    if ((overdue || stop.stop_requested()) && !terminated) {
      ::kill(pid, SIGTERM);  // the supervisor tears its sandbox down on SIGTERM
      terminated = Clock::now();
      KeepTail(exit.last_lines, overdue ? "sandbox: killed after the server's deadline"
                                        : "sandbox: stopped because the server is stopping");
    }
    if (terminated && Clock::now() - *terminated > kTermGrace) ::kill(pid, SIGKILL);
    pollfd p{.fd = read_end.get(), .events = POLLIN, .revents = 0};
    ::poll(&p, 1, 200);
    drain();
    pid_t reaped = ::waitpid(pid, &status, WNOHANG);
    if (reaped == pid || (reaped < 0 && errno != EINTR)) break;
  }
  drain();
  take_lines(true);
  if (WIFEXITED(status)) {
    exit.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  }
  return exit;
}

}  // namespace quell::server
