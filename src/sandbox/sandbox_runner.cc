#include "sandbox/sandbox_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <thread>

#include "common/hash.h"
#include "common/logging.h"
#include "common/unique_fd.h"
#include "sandbox/cgroup_limits.h"
#include "sandbox/dropped_files.h"
#include "sandbox/fake_network.h"
#include "sandbox/sample_kind.h"
#include "sandbox/sandbox_init.h"
#include "sandbox/sandbox_network.h"
#include "sandbox/syscall_tracer.h"

namespace quell::sandbox {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kSetupTimeout{10000};
constexpr char kTempParent[] = "/tmp";
constexpr int kCloneFlags =
    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC;

std::atomic<unsigned> g_run_counter{0};

int64_t Ms(steady_clock::duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); }

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// Blocks SIGTERM and SIGINT on this thread (and the threads it starts) for the run; they are
// taken through a signalfd instead.
class StopSignalBlock {
 public:
  StopSignalBlock() {
    sigset_t set = StopSignals();
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~StopSignalBlock() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  StopSignalBlock(const StopSignalBlock&) = delete;
  StopSignalBlock& operator=(const StopSignalBlock&) = delete;

 private:
  sigset_t old_;
};

bool ConsumeStopSignal(int signal_fd) {
  signalfd_siginfo info{};
  return ::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info);
}

// A private mount namespace for the supervisor, so every mount it (and the sandbox) makes
// vanishes with it; the caller's namespace, root and cwd are restored at the end.
class PrivateMountNamespace {
 public:
  static Result<std::unique_ptr<PrivateMountNamespace>> Enter() {
    auto ns = std::unique_ptr<PrivateMountNamespace>(new PrivateMountNamespace);
    ns->original_.Reset(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
    if (!ns->original_) return ErrnoStatus("open /proc/self/ns/mnt");
    ns->root_.Reset(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    ns->cwd_.Reset(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!ns->root_ || !ns->cwd_) return ErrnoStatus("open the current directory");
    if (::unshare(CLONE_NEWNS) != 0) return ErrnoStatus("unshare the mount namespace");
    ns->entered_ = true;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      return ErrnoStatus("make the supervisor's mounts private");
    }
    return ns;
  }
  ~PrivateMountNamespace() {
    if (!entered_) return;
    if (::setns(original_.get(), CLONE_NEWNS) != 0) {
      Logger("sandbox")->error("cannot return to the original mount namespace: {}",
                               std::strerror(errno));
      return;
    }
    // setns moved root and cwd to the namespace's root; put them back.
    if (::fchdir(root_.get()) == 0) (void)::chroot(".");
    (void)::fchdir(cwd_.get());
  }

 private:
  PrivateMountNamespace() = default;
  UniqueFd original_, root_, cwd_;
  bool entered_ = false;
};

// The scratch tmpfs on a fresh temporary directory; unmounted and removed at the end.
class Scratch {
 public:
  static Result<std::unique_ptr<Scratch>> Create(uint64_t bytes) {
    RemoveStale();
    auto s = std::unique_ptr<Scratch>(new Scratch);
    // The supervisor's pid in the name tells whose it is (tests check their own runs).
    std::string pattern =
        std::string(kTempParent) + "/quell-sandbox-" + std::to_string(::getpid()) + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return ErrnoStatus("mkdtemp " + pattern);
    s->path_ = pattern;
    // nr_inodes: a sample making millions of empty files must not make the walk afterwards
    // (dropped_files) take minutes.
    const std::string options = "size=" + std::to_string(bytes) + ",nr_inodes=65536,mode=0711";
    if (::mount("quell-sandbox", s->path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                options.c_str()) != 0) {
      return ErrnoStatus("mount the scratch tmpfs on " + s->path_);
    }
    s->mounted_ = true;
    return s;
  }
  ~Scratch() {
    if (mounted_ && ::umount2(path_.c_str(), MNT_DETACH) != 0) {
      Logger("sandbox")->warn("umount {}: {}", path_, std::strerror(errno));
    }
    if (!path_.empty() && ::rmdir(path_.c_str()) != 0) {
      Logger("sandbox")->warn("rmdir {}: {}", path_, std::strerror(errno));
    }
  }
  const std::string& path() const { return path_; }

 private:
  Scratch() = default;

  // A SIGKILLed supervisor leaves its (empty: the tmpfs was in its private mount namespace)
  // directory behind; remove those whose supervisor is gone.
  static void RemoveStale() {
    DIR* d = ::opendir(kTempParent);
    if (d == nullptr) return;
    constexpr std::string_view kPrefix = "quell-sandbox-";
    while (dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (!name.starts_with(kPrefix)) continue;
      pid_t owner = 0;
      auto [p, ec] = std::from_chars(name.data() + kPrefix.size(), name.data() + name.size(), owner);
      if (ec != std::errc() || owner <= 0 || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
      ::rmdir((std::string(kTempParent) + "/" + std::string(name)).c_str());
    }
    ::closedir(d);
  }

  std::string path_;
  bool mounted_ = false;
};

// The sandbox's init until it is reaped: killed and reaped (with every tracee that is still
// a zombie of ours) on any early return.
class InitProcess {
 public:
  explicit InitProcess(pid_t pid) : pid_(pid) {}
  ~InitProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    for (;;) {
      pid_t p = ::waitpid(-1, nullptr, __WALL);
      if (p < 0 && errno != EINTR) break;  // ECHILD: all gone
    }
  }
  InitProcess(const InitProcess&) = delete;
  InitProcess& operator=(const InitProcess&) = delete;
  pid_t pid() const { return pid_; }
  void Reaped() { pid_ = 0; }

 private:
  pid_t pid_;
};

// Kills the sandbox's init at the wall-clock limit or on SIGTERM/SIGINT (read from the
// signalfd), on a thread of its own while the caller's thread runs the tracer.
class Watchdog {
 public:
  Watchdog(pid_t init, int signal_fd, steady_clock::time_point deadline)
      : init_(init),
        signal_fd_(signal_fd),
        deadline_(deadline),
        wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    thread_ = std::thread([this] { Watch(); });
  }
  ~Watchdog() { Stop(); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void Stop() {
    if (!thread_.joinable()) return;
    uint64_t one = 1;
    (void)::write(wake_.get(), &one, sizeof one);
    thread_.join();
  }
  bool timed_out() const { return timed_out_; }
  bool interrupted() const { return interrupted_; }

 private:
  void Watch() {
    for (;;) {
      const int64_t left = Ms(deadline_ - steady_clock::now());
      if (left <= 0) {
        timed_out_ = true;
        ::kill(init_, SIGKILL);  // pid 1 of the namespace: the kernel kills the rest
        return;
      }
      pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
      int rc = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 1000)));
      if (rc < 0 && errno != EINTR) return;
      if (rc > 0 && (fds[1].revents & POLLIN)) return;
      if (rc > 0 && (fds[0].revents & POLLIN) && ConsumeStopSignal(signal_fd_)) {
        interrupted_ = true;
        ::kill(init_, SIGKILL);
        return;
      }
    }
  }

  pid_t init_;
  int signal_fd_;
  steady_clock::time_point deadline_;
  UniqueFd wake_;
  std::atomic<bool> timed_out_{false}, interrupted_{false};
  std::thread thread_;
};

bool ValidFileName(const std::string& name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

Status ValidateOptions(const SandboxOptions& o) {
  if (o.sample_path.empty()) return InvalidArgument("no sample given");
  if (o.wall_clock.count() <= 0 || o.wall_clock > std::chrono::hours(24)) {
    return InvalidArgument("the wall-clock limit must be between 1 s and 24 h");
  }
  if (o.memory_bytes < (16ull << 20))
    return InvalidArgument("the memory limit must be at least 16 MiB");
  if (o.max_pids < 4) return InvalidArgument("the pids limit must be at least 4");
  if (!(o.cpus >= 0.01 && o.cpus <= 1024))
    return InvalidArgument("cpus must be between 0.01 and 1024");
  if (o.scratch_bytes < (1ull << 20))
    return InvalidArgument("the scratch size must be at least 1 MiB");
  return Status::Ok();
}

Status WriteIdMaps(pid_t pid) {
  const std::string map =
      "0 " + std::to_string(kSandboxIdBase) + " " + std::to_string(kSandboxIdCount) + "\n";
  for (const char* file : {"uid_map", "gid_map"}) {
    const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), map.data(), map.size()) != static_cast<ssize_t>(map.size())) {
      return ErrnoStatus("write " + path);
    }
  }
  return Status::Ok();
}

// Copies the sample into the sandbox's work dir, owned by the sandbox's root, executable.
Status CopySample(int from, const std::string& to) {
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755));
  if (!out) return ErrnoStatus("create " + to);
  char buf[65536];
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(from, buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read the sample");
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out.get(), buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoStatus("copy the sample into the sandbox");
      done += w;
    }
    offset += n;
  }
  if (::fchown(out.get(), kSandboxIdBase, kSandboxIdBase) != 0) return ErrnoStatus("chown " + to);
  if (::fchmod(out.get(), 0755) != 0) return ErrnoStatus("chmod " + to);
  return Status::Ok();
}

Status SendByte(int fd, char c) {
  if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) return ErrnoStatus("signal the sandbox's init");
  return Status::Ok();
}

}  // namespace

Result<Observations> RunSandbox(const SandboxOptions& o, const ProgressFn& progress) {
  const steady_clock::time_point started = steady_clock::now();
  auto stage = [&](std::string_view s) {
    if (progress) progress(s);
  };
  QUELL_RETURN_IF_ERROR(ValidateOptions(o));
  std::string file_name = o.file_name;
  if (file_name.empty()) {
    size_t slash = o.sample_path.rfind('/');
    file_name = slash == std::string::npos ? o.sample_path : o.sample_path.substr(slash + 1);
  }
  if (!ValidFileName(file_name)) return InvalidArgument("bad sample file name '" + file_name + "'");

  UniqueFd sample(::open(o.sample_path.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!sample) return ErrnoStatus("open " + o.sample_path);
  struct stat st {};
  if (::fstat(sample.get(), &st) != 0) return ErrnoStatus("stat " + o.sample_path);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(o.sample_path + " is not a regular file");
  char head[kSampleHeadBytes];
  ssize_t head_len = ::pread(sample.get(), head, sizeof head, 0);
  if (head_len < 0) return ErrnoStatus("read " + o.sample_path);
  QUELL_ASSIGN_OR_RETURN(
      SampleKind kind,
      DetectSampleKind(std::string_view(head, static_cast<size_t>(head_len)), file_name));
  if (::geteuid() != 0) {
    return FailedPrecondition("quell-sandbox must run as root (it creates namespaces and cgroups)");
  }
  QUELL_ASSIGN_OR_RETURN(FileHashes hashes, HashFd(sample.get()));
  stage("starting");

  StopSignalBlock blocked;
  const sigset_t stop_signals = StopSignals();
  UniqueFd signal_fd(::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd) return ErrnoStatus("signalfd");
  QUELL_ASSIGN_OR_RETURN(ino_t host_netns, CurrentNetworkNamespaceInode());
  QUELL_ASSIGN_OR_RETURN(auto mount_ns, PrivateMountNamespace::Enter());
  QUELL_ASSIGN_OR_RETURN(auto scratch, Scratch::Create(o.scratch_bytes));
  SandboxRootPlan plan = PlanSandboxRoot(scratch->path());
  QUELL_RETURN_IF_ERROR(PrepareSandboxRoot(plan));
  const std::string sandbox_sample = std::string(kSandboxWorkDir) + "/" + file_name;
  for (const WritableDir& w : plan.writable) {
    if (w.sandbox_path == kSandboxWorkDir) {
      QUELL_RETURN_IF_ERROR(CopySample(sample.get(), w.host_path + "/" + file_name));
    }
  }
  sample.Reset();

  const std::string group =
      "run-" + std::to_string(::getpid()) + "-" + std::to_string(g_run_counter++);
  QUELL_ASSIGN_OR_RETURN(CgroupLimits cgroups,
                         CgroupLimits::Create(group, {o.memory_bytes, o.max_pids, o.cpus}));

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    return ErrnoStatus("socketpair");
  UniqueFd control(pair[0]), init_end(pair[1]);

  InitConfig config{plan, kind, sandbox_sample, host_netns, init_end.get()};
  // A fork-like clone (no new stack): the child continues here with a copy of everything.
  const long pid = ::syscall(SYS_clone, kCloneFlags | SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (pid < 0) return ErrnoStatus("clone the sandbox's namespaces");
  if (pid == 0) {
    ::close(control.get());
    RunSandboxInit(config);  // never returns
  }
  InitProcess init(static_cast<pid_t>(pid));
  init_end.Reset();
  QUELL_RETURN_IF_ERROR(WriteIdMaps(init.pid()));
  QUELL_RETURN_IF_ERROR(cgroups.AddProcess(init.pid()));
  QUELL_RETURN_IF_ERROR(SendByte(control.get(), kMsgMapped));
  auto sockets = ReceiveReady(control.get(), signal_fd.get(), kSetupTimeout);
  if (!sockets.ok()) {
    if (sockets.status().code() == StatusCode::kCancelled) ConsumeStopSignal(signal_fd.get());
    return sockets.status();
  }

  const steady_clock::time_point origin = steady_clock::now();
  SyscallTracer tracer(origin);
  QUELL_RETURN_IF_ERROR(tracer.Attach(init.pid()));
  QUELL_ASSIGN_OR_RETURN(std::unique_ptr<FakeNetwork> network,
                         FakeNetwork::Start(std::move(sockets).value(), origin));
  QUELL_RETURN_IF_ERROR(SendByte(control.get(), kMsgRelease));
  stage("sample running");
  Watchdog watchdog(init.pid(), signal_fd.get(), origin + o.wall_clock);
  Result<Trace> trace = tracer.Run(init.pid());
  if (trace.ok()) init.Reaped();
  const steady_clock::time_point ended = steady_clock::now();
  watchdog.Stop();
  NetworkLog network_log = network->Stop();
  network.reset();
  if (!trace.ok()) return trace.status();
  if (watchdog.interrupted()) {
    return Cancelled("interrupted by a signal: the sandbox was stopped and removed");
  }

  stage("collecting dropped files");
  Observations obs;
  QUELL_ASSIGN_OR_RETURN(obs.dropped_files,
                         CollectDroppedFiles(plan.writable, sandbox_sample, hashes.sha256));
  const CgroupCounters counters = cgroups.ReadCounters();
  stage("cleaning up");
  if (Status s = cgroups.Remove(); !s.ok())
    Logger("sandbox")->warn("cgroup cleanup: {}", s.ToString());

  obs.trace = std::move(trace).value();
  obs.network = std::move(network_log);
  RunOutcome& out = obs.outcome;
  out.timed_out = watchdog.timed_out();
  out.memory_limit_hit = counters.memory_limit_hit;
  out.pids_limit_hit = counters.pids_limit_hit;
  for (const ProcessRecord& p : obs.trace.processes) {
    if (p.parent_pid != 0) continue;
    out.exit_code = p.exit_code;
    out.killed_by = p.killed_by;
    break;
  }
  out.startup_ms = Ms(origin - started) + obs.trace.sample_exec_ms.value_or(0);
  out.duration_ms = Ms(ended - origin);
  return obs;
}

}  // namespace quell::sandbox
