#include "sandbox/sandbox_init.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "common/files.h"
#include "sandbox/seccomp_policy.h"

namespace quell::sandbox {
namespace {

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// ---- init (runs in the new namespaces; it is a single-threaded copy of the supervisor) ----

[[noreturn]] void Fail(int control_fd, const std::string& what, int err = 0) {
  std::string msg(1, kMsgFailed);
  msg += what;
  if (err != 0) msg += std::string(": ") + std::strerror(err);
  (void)::send(control_fd, msg.data(), msg.size(), MSG_NOSIGNAL);
  ::_exit(125);
}

char ReceiveByte(int control_fd) {
  char c = 0;
  ssize_t n;
  do {
    n = ::recv(control_fd, &c, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n == 1 ? c : 0;
}

// Remounts a bind mount read-only, keeping the flags the kernel locks in a user namespace.
bool RemountReadOnly(const std::string& target) {
  struct statvfs sv {};
  if (::statvfs(target.c_str(), &sv) != 0) return false;
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return ::mount(nullptr, target.c_str(), nullptr, flags, nullptr) == 0;
}

void BuildRoot(const InitConfig& c) {
  const int fd = c.control_fd;
  const std::string& root = c.plan.root;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    Fail(fd, "make / private", errno);
  if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND, nullptr) != 0)
    Fail(fd, "bind root", errno);
  for (const MountStep& m : c.plan.mounts) {
    const std::string target = root + m.target;
    switch (m.kind) {
      case MountStep::Kind::kBindReadOnly:
        if (::mount(m.source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
          Fail(fd, "bind " + m.source + " on " + m.target, errno);
        }
        if (!RemountReadOnly(target)) Fail(fd, "read-only " + m.target, errno);
        break;
      case MountStep::Kind::kBindWritable:
        if (::mount(m.source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
          Fail(fd, "bind " + m.source + " on " + m.target, errno);
        }
        break;
      case MountStep::Kind::kSymlink:
        break;
    }
  }
  // A fresh /proc for the new pid namespace; the kernel allows it only while the host's
  // /proc is still visible in this mount namespace, so before the old root goes.
  const std::string proc = root + "/proc";
  if (::mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    Fail(fd, "mount /proc", errno);
  }
  if (!RemountReadOnly(root)) Fail(fd, "read-only root", errno);
  if (::chdir(root.c_str()) != 0) Fail(fd, "chdir root", errno);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) Fail(fd, "pivot_root", errno);
  if (::umount2(".", MNT_DETACH) != 0) Fail(fd, "detach the host root", errno);
  if (::chdir(kSandboxWorkDir) != 0) Fail(fd, "chdir work dir", errno);
}

void SendReady(int fd, SandboxNetworkSockets& sockets) {
  int fds[2] = {sockets.tcp_listener.get(), sockets.dns_udp.get()};
  char byte = kMsgReady;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof fds);
  std::memcpy(CMSG_DATA(cm), fds, sizeof fds);
  if (::sendmsg(fd, &msg, MSG_NOSIGNAL) != 1) ::_exit(125);
  sockets.tcp_listener.Reset();
  sockets.dns_udp.Reset();
}

[[noreturn]] void ExecSample(const InitConfig& c) {
  ::setsid();
  int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
  }
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
  for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  std::string interpreter(SampleInterpreter(c.kind));
  std::vector<char*> argv;
  if (!interpreter.empty()) argv.push_back(interpreter.data());
  std::string sample = c.sample_path;
  argv.push_back(sample.data());
  argv.push_back(nullptr);
  static char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  static char kHome[] = "HOME=/root";
  static char kUser[] = "USER=root";
  static char kLogname[] = "LOGNAME=root";
  static char kShell[] = "SHELL=/bin/sh";
  static char kPwd[] = "PWD=/analysis";
  static char kLang[] = "LANG=C.UTF-8";
  char* envp[] = {kPath, kHome, kUser, kLogname, kShell, kPwd, kLang, nullptr};
  ::execve(argv[0], argv.data(), envp);
  ::_exit(127);
}

}  // namespace

SandboxRootPlan PlanSandboxRoot(const std::string& scratch, const std::string& host_root) {
  SandboxRootPlan p;
  p.scratch = scratch;
  p.root = scratch + "/root";
  auto host = [&](const std::string& path) {
    return (host_root == "/" ? std::string() : host_root) + path;
  };
  auto ro = [&](const std::string& path) {
    p.skeleton_dirs.push_back(path);
    p.mounts.push_back({MountStep::Kind::kBindReadOnly, host(path), path});
  };
  // usrmerge: /bin, /lib... are symlinks into /usr on most systems; copy them as they are.
  for (const char* name : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st {};
    if (::lstat(host(name).c_str(), &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(host(name).c_str(), buf, sizeof buf - 1);
      if (n > 0) p.mounts.push_back({MountStep::Kind::kSymlink, std::string(buf, n), name});
    } else if (S_ISDIR(st.st_mode)) {
      ro(name);
    }
  }
  for (const char* name : {"/usr", "/etc", "/opt", "/var"}) {
    if (IsDir(host(name))) ro(name);
  }
  for (const char* name : {"/proc", "/dev", "/srv", "/mnt", "/media"})
    p.skeleton_dirs.push_back(name);
  // Secrets of the analysis host the sandbox must not read, even where permissions allow.
  for (const char* secret : {"/var/lib/quell", "/etc/quell"}) {
    if (IsDir(host(secret)))
      p.mounts.push_back({MountStep::Kind::kBindReadOnly, scratch + "/empty", secret});
  }
  p.resolv_conf = scratch + "/resolv.conf";
  struct stat st {};
  if (::lstat(host("/etc/resolv.conf").c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    p.mounts.push_back({MountStep::Kind::kBindReadOnly, p.resolv_conf, "/etc/resolv.conf"});
  }
  struct Writable {
    const char* name;
    const char* path;
  };
  for (Writable w : {Writable{"tmp", "/tmp"}, Writable{"var_tmp", "/var/tmp"},
                     Writable{"root", "/root"}, Writable{"home", "/home"}, Writable{"run", "/run"},
                     Writable{"dev_shm", "/dev/shm"}, Writable{"work", kSandboxWorkDir}}) {
    std::string path = w.path;
    if (path == "/var/tmp" && !IsDir(host("/var/tmp"))) continue;  // nothing to mount on
    if (path != "/var/tmp") p.skeleton_dirs.push_back(path);
    std::string source = scratch + "/rw/" + w.name;
    p.mounts.push_back({MountStep::Kind::kBindWritable, source, path});
    p.writable.push_back({source, path});
  }
  for (const char* name : {"null", "zero", "full", "random", "urandom", "tty"}) {
    std::string dev = std::string("/dev/") + name;
    if (::stat(host(dev).c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) continue;
    p.device_files.push_back(dev);
    p.mounts.push_back({MountStep::Kind::kBindWritable, host(dev), dev});
  }
  return p;
}

Status PrepareSandboxRoot(const SandboxRootPlan& plan) {
  QUELL_RETURN_IF_ERROR(MakeDirs(plan.root, 0755));
  QUELL_RETURN_IF_ERROR(MakeDirs(plan.scratch + "/empty", 0755));
  for (const std::string& dir : plan.skeleton_dirs) {
    QUELL_RETURN_IF_ERROR(MakeDirs(plan.root + dir, 0755));
  }
  for (const std::string& file : plan.device_files) {
    int fd = ::open((plan.root + file).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("create " + plan.root + file);
    ::close(fd);
  }
  for (const MountStep& m : plan.mounts) {
    if (m.kind != MountStep::Kind::kSymlink) continue;
    if (::symlink(m.source.c_str(), (plan.root + m.target).c_str()) != 0) {
      return ErrnoStatus("symlink " + plan.root + m.target);
    }
  }
  QUELL_RETURN_IF_ERROR(MakeDirs(plan.scratch + "/rw", 0755));
  for (const WritableDir& w : plan.writable) {
    const bool shared =
        w.sandbox_path == "/tmp" || w.sandbox_path == "/var/tmp" || w.sandbox_path == "/dev/shm";
    const mode_t mode = shared ? 01777 : w.sandbox_path == "/root" ? 0700 : 0755;
    if (::mkdir(w.host_path.c_str(), mode) != 0) return ErrnoStatus("mkdir " + w.host_path);
    if (::chmod(w.host_path.c_str(), mode) != 0) return ErrnoStatus("chmod " + w.host_path);
    if (::chown(w.host_path.c_str(), kSandboxIdBase, kSandboxIdBase) != 0) {
      return ErrnoStatus("chown " + w.host_path);
    }
  }
  int fd = ::open(plan.resolv_conf.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create " + plan.resolv_conf);
  const size_t len = std::strlen(kSandboxResolvConf);
  const bool ok = ::write(fd, kSandboxResolvConf, len) == static_cast<ssize_t>(len);
  ::close(fd);
  if (!ok) return ErrnoStatus("write " + plan.resolv_conf);
  return Status::Ok();
}

Result<SandboxNetworkSockets> ReceiveReady(int control_fd, int cancel_fd,
                                           std::chrono::milliseconds timeout) {
  pollfd fds[2] = {{control_fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
  const nfds_t n = cancel_fd >= 0 ? 2 : 1;
  int rc;
  do {
    rc = ::poll(fds, n, static_cast<int>(timeout.count()));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return ErrnoStatus("poll");
  if (rc == 0) return DeadlineExceeded("the sandbox did not get ready in time");
  if (n == 2 && (fds[1].revents & POLLIN) && !(fds[0].revents & POLLIN)) {
    return Cancelled("interrupted while the sandbox was starting");
  }
  char buf[1024];
  iovec iov{buf, sizeof buf};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t len = ::recvmsg(control_fd, &msg, MSG_CMSG_CLOEXEC);
  if (len < 0) return ErrnoStatus("receive from the sandbox's init");
  SandboxNetworkSockets sockets;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    int got[2] = {-1, -1};
    size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    std::memcpy(got, CMSG_DATA(cm), std::min<size_t>(count, 2) * sizeof(int));
    for (size_t i = 2; i < count; ++i) {  // never more than two; close any extra
      int extra;
      std::memcpy(&extra, CMSG_DATA(cm) + i * sizeof(int), sizeof extra);
      ::close(extra);
    }
    sockets.tcp_listener.Reset(got[0]);
    sockets.dns_udp.Reset(got[1]);
  }
  if (len == 0) return Internal("the sandbox's init exited during set-up");
  if (buf[0] == kMsgFailed) {
    return Internal("sandbox set-up failed: " + std::string(buf + 1, static_cast<size_t>(len) - 1));
  }
  if (buf[0] != kMsgReady || !sockets.tcp_listener || !sockets.dns_udp) {
    return Internal("unexpected message from the sandbox's init");
  }
  return sockets;
}

void RunSandboxInit(const InitConfig& c) {
  const int fd = c.control_fd;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (ReceiveByte(fd) != kMsgMapped) ::_exit(125);  // the supervisor gave up
  // Until now this process is host root, unmapped here (files it made would fail with
  // EOVERFLOW); become the sandbox's root, mapped to an unprivileged host id.
  if (::setgroups(0, nullptr) != 0) Fail(fd, "setgroups", errno);
  if (::setresgid(0, 0, 0) != 0) Fail(fd, "setresgid", errno);
  if (::setresuid(0, 0, 0) != 0) Fail(fd, "setresuid", errno);
  if (::sethostname("sandbox", 7) != 0) Fail(fd, "sethostname", errno);
  auto sockets = ConfigureSandboxNetwork(c.host_netns_inode);
  if (!sockets.ok()) Fail(fd, "network: " + sockets.status().ToString());
  BuildRoot(c);
  if (Status s = LoadSeccompPolicy(); !s.ok()) Fail(fd, "seccomp: " + s.ToString());
  SendReady(fd, *sockets);
  if (ReceiveByte(fd) != kMsgRelease) ::_exit(125);
  ::close(fd);

  const pid_t sample = ::fork();
  if (sample < 0) ::_exit(125);
  if (sample == 0) ExecSample(c);
  // pid 1: every orphan of the sandbox re-parents here. Stay until none is left, so a sample
  // that backgrounds a child and exits is still watched.
  int sample_status = 0;
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, __WALL);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD
    }
    if (pid == sample) sample_status = status;
  }
  if (WIFSIGNALED(sample_status)) ::_exit(128 + WTERMSIG(sample_status));
  ::_exit(WEXITSTATUS(sample_status));
}

}  // namespace quell::sandbox
