#include "agent/live/script_runner.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>

#include "common/logging.h"
#include "common/unique_fd.h"

namespace quell::agent::live {
namespace {

using SteadyClock = std::chrono::steady_clock;

auto Log() {
  static auto log = Logger("live");
  return log;
}

constexpr char kPathEnv[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// What the child reports through the exec-error pipe when it cannot start the script.
struct ChildFailure {
  int stage;  // 1: chdir, 2: execve
  int err;
};

// One captured stream: the pipe's read end and the file it is copied into, up to a cap.
struct Capture {
  UniqueFd pipe;
  UniqueFd file;
  uint64_t written = 0;
  bool truncated = false;
  bool write_failed = false;
  const std::function<void(std::string_view)>* on_output = nullptr;  // told what is kept
};

// Reads what is available from the pipe (at most `max_reads` reads, so that a script writing
// without pause cannot keep the caller from its deadline) into the file, up to the cap.
// Returns false at EOF or on a read error, when the pipe is done.
bool Pump(Capture& c, uint64_t cap, int max_reads) {
  std::array<char, 65536> buf;
  for (int i = 0; i < max_reads; ++i) {
    ssize_t got = ::read(c.pipe.get(), buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == EAGAIN) return true;
    if (got <= 0) return false;
    size_t keep = static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(got),
                                                         cap - c.written));
    if (keep < static_cast<size_t>(got)) c.truncated = true;
    size_t off = 0;
    while (off < keep && !c.write_failed) {
      ssize_t w = ::write(c.file.get(), buf.data() + off, keep - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        // Disk full or similar: what was kept so far stays, the rest is reported as cut.
        c.write_failed = true;
        c.truncated = true;
        break;
      }
      off += static_cast<size_t>(w);
    }
    c.written += off;
    if (off > 0 && c.on_output != nullptr && *c.on_output) {
      (*c.on_output)(std::string_view(buf.data(), off));
    }
  }
  return true;
}

// Reads what the pipe holds now (bounded: a background descendant may keep writing), then
// stops listening to it.
void DrainAndClose(Capture& c, uint64_t cap) {
  if (!c.pipe) return;
  (void)Pump(c, cap, 1024);
  c.pipe.Reset();
}

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(d.count()) / 1000);
  return buf;
}

}  // namespace

Result<ScriptRunResult> RunScript(const std::string& program, const std::vector<std::string>& args,
                                  const ScriptRunOptions& options, std::stop_token stop) {
  Capture out, err;
  out.on_output = &options.on_stdout;
  out.file.Reset(::open(options.stdout_path.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!out.file) return ErrnoStatus("create " + options.stdout_path);
  err.file.Reset(::open(options.stderr_path.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!err.file) return ErrnoStatus("create " + options.stderr_path);
  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_in) return ErrnoStatus("open /dev/null");

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  out.pipe.Reset(p[0]);
  UniqueFd out_w(p[1]);
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  err.pipe.Reset(p[0]);
  UniqueFd err_w(p[1]);
  // Closed by a successful execve (O_CLOEXEC); carries a ChildFailure otherwise.
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
  UniqueFd status_r(p[0]);
  UniqueFd status_w(p[1]);
  // Wakes the wait below when `stop` is requested.
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return ErrnoStatus("eventfd");

  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv, sh_argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  sh_argv.push_back(const_cast<char*>("/bin/sh"));
  sh_argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
    sh_argv.push_back(const_cast<char*>(a.c_str()));
  }
  argv.push_back(nullptr);
  sh_argv.push_back(nullptr);
  std::vector<char*> env = {const_cast<char*>(kPathEnv), const_cast<char*>("LANG=C.UTF-8"),
                            const_cast<char*>("HOME=/root"), nullptr};
  const char* cwd = options.cwd.c_str();
  const rlimit no_core{0, 0};

  pid_t pid = -1;
  ChildFailure failure{};
  // ETXTBSY: another thread of this process forked while the script file was still open for
  // writing (its fetch), and that child has not exec'd yet. It passes; try again.
  for (int attempt = 0; attempt < 5; ++attempt) {
    pid = ::fork();
    if (pid < 0) return ErrnoStatus("fork");
    if (pid == 0) {
      ::setpgid(0, 0);
      // Signal state is inherited across execve for ignored signals and the mask: the agent
      // ignores SIGPIPE and may block signals in its threads; the script gets the defaults.
      struct sigaction dfl;
      std::memset(&dfl, 0, sizeof dfl);
      dfl.sa_handler = SIG_DFL;
      for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
      sigset_t none;
      ::sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::setrlimit(RLIMIT_CORE, &no_core);
      ::dup2(null_in.get(), 0);
      ::dup2(out_w.get(), 1);
      ::dup2(err_w.get(), 2);
      // Descriptors other threads opened without O_CLOEXEC must not leak into the script.
      ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
      ChildFailure f{1, 0};
      if (::chdir(cwd) != 0) {
        f.err = errno;
      } else {
        ::execve(argv[0], argv.data(), env.data());
        if (errno == ENOEXEC) ::execve("/bin/sh", sh_argv.data(), env.data());
        f = {2, errno};
      }
      (void)!::write(status_w.get(), &f, sizeof f);
      ::_exit(127);
    }
    // Also here, so that a kill(-pid) below can never miss the group (EACCES once it exec'd).
    ::setpgid(pid, pid);
    UniqueFd mine_w(status_w.Release());
    mine_w.Reset();
    ssize_t got;
    do {
      got = ::read(status_r.get(), &failure, sizeof failure);
    } while (got < 0 && errno == EINTR);
    if (got != static_cast<ssize_t>(sizeof failure)) break;  // EOF: execve succeeded
    int ignored;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    if (failure.stage != 2 || failure.err != ETXTBSY || attempt == 4) {
      return ErrnoStatus(failure.stage == 1 ? "change to " + options.cwd : "run " + program,
                         failure.err);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20 << attempt));
    if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe");
    status_r.Reset(p[0]);
    status_w.Reset(p[1]);
  }
  out_w.Reset();
  err_w.Reset();
  const auto started = SteadyClock::now();
  const auto deadline = started + options.time_limit;
  ::fcntl(out.pipe.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err.pipe.get(), F_SETFL, O_NONBLOCK);
  std::stop_callback on_stop(stop, [&wake] {
    const uint64_t one = 1;
    (void)!::write(wake.get(), &one, sizeof one);
  });
  // A pidfd makes the child's exit wake the poll; without one (old kernels) poll ticks.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  ScriptRunResult result;
  int status = 0;
  const uint64_t cap = options.max_output_bytes;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    const bool now_stop = stop.stop_requested();
    const bool now_late = SteadyClock::now() >= deadline;
    if (r < 0 && errno != EINTR) {
      Log()->error("waitpid {}: {}", pid, std::strerror(errno));
      ::kill(-pid, SIGKILL);
      break;
    }
    if (now_stop || now_late) {
      ::kill(-pid, SIGKILL);
      result.cancelled = now_stop;
      result.timed_out = !now_stop;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::vector<pollfd> fds;
    std::vector<Capture*> owners;
    for (Capture* c : {&out, &err}) {
      if (c->pipe) {
        fds.push_back({c->pipe.get(), POLLIN, 0});
        owners.push_back(c);
      }
    }
    fds.push_back({wake.get(), POLLIN, 0});
    if (pidfd) fds.push_back({pidfd.get(), POLLIN, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    int timeout = static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, pidfd ? 60'000 : 50));
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      Log()->error("poll: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    for (size_t i = 0; i < owners.size(); ++i) {
      if (fds[i].revents != 0 && !Pump(*owners[i], cap, 16)) owners[i]->pipe.Reset();
    }
  }
  result.duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
  DrainAndClose(out, cap);
  DrainAndClose(err, cap);
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  result.stdout_truncated = out.truncated;
  result.stderr_truncated = err.truncated;
  Log()->debug("{}: {} after {} ms{}", program,
               result.exit_code ? "exit " + std::to_string(*result.exit_code)
                                : "signal " + std::to_string(result.signal),
               result.duration.count(),
               result.timed_out ? ", timed out after " + Seconds(options.time_limit) : "");
  return result;
}

}  // namespace quell::agent::live
