#include "sandbox/syscall_tracer.h"

// glibc 2.36: <sys/ptrace.h> and <linux/ptrace.h> conflict; glibc's header alone has
// PTRACE_GET_SYSCALL_INFO and struct __ptrace_syscall_info.
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <tuple>
#include <unordered_map>
#include <variant>

#include "common/logging.h"
#include "sandbox/syscall_names.h"
#include "sandbox/tracee_memory.h"

namespace quell::sandbox {
namespace {

constexpr uint32_t kAuditArchX8664 = 0xC000003E;  // AUDIT_ARCH_X86_64 (<linux/audit.h>)
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxSockaddrBytes = 128;  // sizeof(struct sockaddr_storage)
constexpr size_t kMaxGroups = 64;

using PendingRecord = std::variant<std::monostate, FileRecord, IdentityChange, ConnectRecord,
                                   PrivilegedCall, SignalRecord>;

struct ExecAttempt {
  bool valid = false;
  std::string path;
  std::vector<std::string> argv;
};

struct Task {
  pid_t tgid = 0;
  bool fresh = true;      // its first stop (the attach / auto-attach stop) is still to come
  PendingRecord pending;  // decoded at syscall entry, completed with the result at exit
  ExecAttempt exec;       // the execve in progress, committed at PTRACE_EVENT_EXEC
};

struct ProcessInfo {
  std::optional<size_t> record;        // index in Trace::processes
  std::optional<pid_t> namespace_pid;  // how the process numbers itself (cached)
};

bool IsStopSignal(int sig) {
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

// Writes on these are what shells do all day (`2>/dev/null`, the terminal); not behaviour.
bool IsNoisePath(const std::string& path) {
  return path == "/dev/null" || path == "/dev/tty" || path == "/dev/zero" || path == "/dev/full" ||
         path.rfind("/dev/pts/", 0) == 0 || path.rfind("/dev/fd/", 0) == 0 ||
         path == "/dev/stdout" || path == "/dev/stderr";
}

int64_t AsInt32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }
int AsFd(uint64_t v) { return static_cast<int>(static_cast<int32_t>(v)); }

std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

class SyscallTracer::Impl {
 public:
  Impl(std::chrono::steady_clock::time_point origin, TracerLimits limits)
      : origin_(origin), limits_(limits), log_(Logger("sandbox.tracer")) {}

  Status Attach(pid_t pid) {
    long options = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                   PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, pid, nullptr, reinterpret_cast<void*>(options)) != 0) {
      return ErrnoStatus("ptrace(PTRACE_SEIZE) pid " + std::to_string(pid));
    }
    // SEIZE does not stop the tracee; without a stop there is no first PTRACE_SYSCALL
    // restart, and no syscall would ever be reported.
    if (ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0) {
      return ErrnoStatus("ptrace(PTRACE_INTERRUPT) pid " + std::to_string(pid));
    }
    tasks_[pid] = Task{.tgid = pid};
    attached_.push_back(pid);
    return Status::Ok();
  }

  Result<Trace> Run(pid_t quiet_pid) {
    if (attached_.empty()) return FailedPrecondition("SyscallTracer::Run without Attach");
    quiet_ = quiet_pid;
    for (pid_t pid : attached_) {
      if (pid == quiet_) continue;
      EnsureProcess(pid, 0);
      if (sample_ == 0) sample_ = pid;
    }
    while (!tasks_.empty()) {
      int status = 0;
      pid_t tid = waitpid(-1, &status, __WALL);
      if (tid < 0) {
        if (errno == EINTR) continue;
        if (errno != ECHILD) log_->warn("waitpid: {}", std::strerror(errno));
        break;  // ECHILD: every tracee is gone even if an exit was never reported
      }
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        HandleExit(tid, status);
        continue;
      }
      if (!WIFSTOPPED(status)) continue;
      auto it = tasks_.find(tid);
      if (it == tasks_.end()) {
        // An auto-attached child whose first stop arrived before its parent's fork event.
        it = tasks_.emplace(tid, Task{.tgid = TraceeTgid(tid).value_or(tid)}).first;
      }
      Task& task = it->second;
      const int sig = WSTOPSIG(status);
      const int event = status >> 16;
      if (sig == (SIGTRAP | 0x80)) {
        HandleSyscallStop(tid, task);
        Resume(tid, 0);
      } else if (event == PTRACE_EVENT_STOP) {
        if (!task.fresh && IsStopSignal(sig)) {
          // Group-stop under SEIZE: stay stopped (job control works) but keep reporting.
          ptrace(PTRACE_LISTEN, tid, nullptr, nullptr);
        } else {
          Resume(tid, 0);
        }
      } else if (event != 0) {
        HandleEvent(tid, event);
        Resume(tid, 0);
      } else {
        Resume(tid, sig);  // signal-delivery-stop: the signal is the tracee's, pass it on
      }
      auto again = tasks_.find(tid);
      if (again != tasks_.end()) again->second.fresh = false;
    }
    return std::move(trace_);
  }

 private:
  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 origin_)
        .count();
  }

  void Resume(pid_t tid, int sig) {
    ptrace(PTRACE_SYSCALL, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
    // ESRCH: killed meanwhile (SIGKILL of the sandbox); its exit is reported by waitpid.
  }

  bool TakeRecordSlot() {
    if (records_ >= limits_.max_records) {
      trace_.truncated = true;
      return false;
    }
    ++records_;
    return true;
  }

  // The record of process `tgid`, created if needed. `parent` (0 for the sample) is known
  // from a fork event; without one (the child's exec was seen before its parent's fork event:
  // waitpid does not order them) it is taken from /proc and fixed by the fork event later.
  ProcessInfo& EnsureProcess(pid_t tgid, std::optional<pid_t> parent) {
    ProcessInfo& info = processes_[tgid];
    if (info.record) {
      if (parent) trace_.processes[*info.record].parent_pid = *parent;
      return info;
    }
    if (tgid == quiet_ || !TakeRecordSlot()) return info;
    ProcessRecord rec;
    rec.pid = tgid;
    rec.parent_pid = parent ? *parent : ParentFromProc(tgid);
    rec.started_ms = NowMs();
    info.record = trace_.processes.size();
    trace_.processes.push_back(std::move(rec));
    return info;
  }

  // The parent to record for a child of `parent_tgid`: the quiet init's first child is the
  // sample (0); its later children name the init.
  pid_t RecordedParent(pid_t child_tgid, pid_t parent_tgid) {
    if (parent_tgid != quiet_) return parent_tgid;
    if (sample_ == 0) sample_ = child_tgid;
    return sample_ == child_tgid ? 0 : quiet_;
  }

  pid_t ParentFromProc(pid_t tgid) {
    std::optional<pid_t> ppid = TraceeParent(tgid);
    return ppid ? RecordedParent(tgid, *ppid) : 0;
  }

  void HandleExit(pid_t tid, int status) {
    auto it = tasks_.find(tid);
    if (it == tasks_.end()) return;  // an untraced child of ours; not our business
    const pid_t tgid = it->second.tgid;
    tasks_.erase(it);
    if (tid != tgid) return;  // a thread; the leader's exit is the process's
    auto p = processes_.find(tgid);
    if (p == processes_.end() || !p->second.record) return;
    ProcessRecord& rec = trace_.processes[*p->second.record];
    if (WIFEXITED(status)) rec.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) rec.killed_by = WTERMSIG(status);
  }

  void HandleEvent(pid_t tid, int event) {
    unsigned long msg = 0;
    ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &msg);
    const pid_t parent_tgid = tasks_[tid].tgid;
    if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK || event == PTRACE_EVENT_CLONE) {
      const pid_t child = static_cast<pid_t>(msg);
      if (child <= 0) return;
      pid_t child_tgid = child;
      if (event == PTRACE_EVENT_CLONE) child_tgid = TraceeTgid(child).value_or(child);
      auto [it, inserted] = tasks_.try_emplace(child, Task{.tgid = child_tgid});
      if (!inserted) it->second.tgid = child_tgid;
      if (child_tgid == parent_tgid) return;  // a thread
      const pid_t parent = RecordedParent(child_tgid, parent_tgid);
      EnsureProcess(child_tgid, parent);
      return;
    }
    if (event == PTRACE_EVENT_EXEC) {
      Task& task = tasks_[tid];
      const pid_t former = static_cast<pid_t>(msg);
      if (former != tid) {
        // A non-leader thread exec'd: it now has the leader's tid; its old id is gone
        // without an exit report.
        auto f = tasks_.find(former);
        if (f != tasks_.end()) {
          task.exec = std::move(f->second.exec);
          tasks_.erase(f);
        }
      }
      task.pending = std::monostate{};
      ExecAttempt exec = std::move(task.exec);
      task.exec = {};
      if (task.tgid == quiet_) return;
      ProcessInfo& info = EnsureProcess(task.tgid, std::nullopt);
      if (task.tgid == sample_ && !trace_.sample_exec_ms) trace_.sample_exec_ms = NowMs();
      if (!info.record) return;
      ProcessRecord& rec = trace_.processes[*info.record];
      if (exec.valid) {
        rec.executable = std::move(exec.path);
        rec.argv = std::move(exec.argv);
      } else {
        rec.executable = TraceeExe(tid);  // the exec started before we saw it
      }
    }
  }

  void HandleSyscallStop(pid_t tid, Task& task) {
    __ptrace_syscall_info info{};
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, reinterpret_cast<void*>(sizeof info), &info) <= 0) {
      return;
    }
    if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
      task.pending = std::monostate{};
      if (task.tgid == quiet_ || info.arch != kAuditArchX8664) return;
      DecodeEntry(tid, task, info.entry.nr, info.entry.args);
      return;
    }
    if (info.op != PTRACE_SYSCALL_INFO_EXIT) return;
    task.exec.valid = task.exec.valid && info.exit.rval == 0;  // a failed execve
    PendingRecord pending = std::move(task.pending);
    task.pending = std::monostate{};
    if (std::holds_alternative<std::monostate>(pending)) return;
    if (!TakeRecordSlot()) return;
    const int64_t rval = info.exit.rval;
    std::visit(
        [&](auto& rec) {
          using T = std::decay_t<decltype(rec)>;
          if constexpr (!std::is_same_v<T, std::monostate>) rec.result = rval;
          if constexpr (std::is_same_v<T, FileRecord>) trace_.files.push_back(std::move(rec));
          if constexpr (std::is_same_v<T, IdentityChange>)
            trace_.identity_changes.push_back(std::move(rec));
          if constexpr (std::is_same_v<T, ConnectRecord>)
            trace_.connections.push_back(std::move(rec));
          if constexpr (std::is_same_v<T, PrivilegedCall>)
            trace_.privileged_calls.push_back(std::move(rec));
          if constexpr (std::is_same_v<T, SignalRecord>) trace_.signals.push_back(std::move(rec));
        },
        pending);
  }

  std::string PathArg(pid_t tid, int dirfd, uint64_t addr) {
    auto raw = ReadTraceeString(tid, addr, kMaxPathBytes);
    if (!raw) return "";
    return ResolveTraceePath(tid, dirfd, *raw);
  }

  void DecodeEntry(pid_t tid, Task& task, uint64_t nr, const uint64_t* a) {
    switch (ClassifySyscall(nr)) {
      case SyscallClass::kIgnored: return;
      case SyscallClass::kFile: return DecodeFile(tid, task, nr, a);
      case SyscallClass::kExec: return DecodeExec(tid, task, nr, a);
      case SyscallClass::kIdentity: return DecodeIdentity(tid, task, nr, a);
      case SyscallClass::kConnect: return DecodeConnect(tid, task, nr, a);
      case SyscallClass::kPrivileged: return DecodePrivileged(tid, task, nr, a);
      case SyscallClass::kSignal: return DecodeSignal(tid, task, nr, a);
    }
  }

  void DecodeFile(pid_t tid, Task& task, uint64_t nr, const uint64_t* a);
  void DecodeExec(pid_t tid, Task& task, uint64_t nr, const uint64_t* a);
  void DecodeIdentity(pid_t tid, Task& task, uint64_t nr, const uint64_t* a);
  void DecodeConnect(pid_t tid, Task& task, uint64_t nr, const uint64_t* a);
  void DecodePrivileged(pid_t tid, Task& task, uint64_t nr, const uint64_t* a);
  void DecodeSignal(pid_t tid, Task& task, uint64_t nr, const uint64_t* a);

  std::chrono::steady_clock::time_point origin_;
  TracerLimits limits_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<pid_t> attached_;
  pid_t quiet_ = 0;
  pid_t sample_ = 0;
  std::unordered_map<pid_t, Task> tasks_;             // by tid: every traced task alive
  std::unordered_map<pid_t, ProcessInfo> processes_;  // by tgid
  std::set<std::tuple<pid_t, std::string, std::string, uint16_t>> datagram_targets_;
  size_t records_ = 0;
  Trace trace_;
};

void SyscallTracer::Impl::DecodeFile(pid_t tid, Task& task, uint64_t nr, const uint64_t* a) {
  FileRecord rec;
  rec.pid = task.tgid;
  rec.at_ms = NowMs();
  const std::string name = SyscallName(nr);
  if (name == "open" || name == "openat" || name == "openat2" || name == "creat") {
    int dirfd = AT_FDCWD;
    uint64_t path_addr = a[0], flags = a[1], mode = a[2];
    if (name == "openat") {
      dirfd = AsFd(a[0]), path_addr = a[1], flags = a[2], mode = a[3];
    } else if (name == "openat2") {
      dirfd = AsFd(a[0]), path_addr = a[1];
      std::string how = ReadTraceeBytes(tid, a[2], 2 * sizeof(uint64_t));  // flags, mode
      if (how.size() < 2 * sizeof(uint64_t)) return;
      std::memcpy(&flags, how.data(), sizeof flags);
      std::memcpy(&mode, how.data() + sizeof flags, sizeof mode);
    } else if (name == "creat") {
      flags = O_CREAT | O_WRONLY | O_TRUNC, mode = a[1];
    }
    const bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
    if (!writes && !(flags & O_CREAT)) return;
    rec.path = PathArg(tid, dirfd, path_addr);
    if (rec.path.empty() || IsNoisePath(rec.path)) return;
    // O_CREAT on a file that exists creates nothing: that is a write (or nothing at all).
    if ((flags & O_CREAT) && !ExistsInTraceeRoot(tid, rec.path)) {
      rec.operation = FileOperation::kCreate;
      rec.mode = static_cast<uint32_t>(mode & 07777);
    } else if (writes) {
      rec.operation = FileOperation::kWrite;
    } else {
      return;
    }
  } else if (name == "rename" || name == "renameat" || name == "renameat2") {
    rec.operation = FileOperation::kRename;
    if (name == "rename") {
      rec.path = PathArg(tid, AT_FDCWD, a[0]);
      rec.new_path = PathArg(tid, AT_FDCWD, a[1]);
    } else {
      rec.path = PathArg(tid, AsFd(a[0]), a[1]);
      rec.new_path = PathArg(tid, AsFd(a[2]), a[3]);
    }
  } else if (name == "unlink" || name == "rmdir") {
    rec.operation = FileOperation::kDelete;
    rec.path = PathArg(tid, AT_FDCWD, a[0]);
  } else if (name == "unlinkat") {
    rec.operation = FileOperation::kDelete;
    rec.path = PathArg(tid, AsFd(a[0]), a[1]);
  } else if (name == "chmod") {
    rec.operation = FileOperation::kChmod;
    rec.path = PathArg(tid, AT_FDCWD, a[0]);
    rec.mode = static_cast<uint32_t>(a[1] & 07777);
  } else if (name == "fchmod") {
    rec.operation = FileOperation::kChmod;
    rec.path = TraceeFdPath(tid, AsFd(a[0]));
    rec.mode = static_cast<uint32_t>(a[1] & 07777);
  } else if (name == "fchmodat" || name == "fchmodat2") {
    rec.operation = FileOperation::kChmod;
    rec.path = PathArg(tid, AsFd(a[0]), a[1]);
    rec.mode = static_cast<uint32_t>(a[2] & 07777);
  } else if (name == "truncate") {
    rec.operation = FileOperation::kWrite;
    rec.path = PathArg(tid, AT_FDCWD, a[0]);
  } else {
    return;
  }
  if (rec.path.empty()) return;
  task.pending = std::move(rec);
}

void SyscallTracer::Impl::DecodeExec(pid_t tid, Task& task, uint64_t nr, const uint64_t* a) {
  ExecAttempt exec;
  exec.valid = true;
  if (SyscallName(nr) == "execve") {
    exec.path = PathArg(tid, AT_FDCWD, a[0]);
    exec.argv = ReadTraceeArgv(tid, a[1], limits_.max_argv, limits_.max_arg_bytes);
  } else {  // execveat(dirfd, path, argv, envp, flags)
    exec.path = PathArg(tid, AsFd(a[0]), a[1]);
    exec.argv = ReadTraceeArgv(tid, a[2], limits_.max_argv, limits_.max_arg_bytes);
  }
  task.exec = std::move(exec);
}

void SyscallTracer::Impl::DecodeIdentity(pid_t tid, Task& task, uint64_t nr, const uint64_t* a) {
  IdentityChange rec;
  rec.pid = task.tgid;
  rec.at_ms = NowMs();
  rec.call = SyscallName(nr);
  if (rec.call == "setreuid" || rec.call == "setregid") {
    rec.ids = {AsInt32(a[0]), AsInt32(a[1])};
  } else if (rec.call == "setresuid" || rec.call == "setresgid") {
    rec.ids = {AsInt32(a[0]), AsInt32(a[1]), AsInt32(a[2])};
  } else if (rec.call == "setgroups") {
    size_t n = std::min<uint64_t>(static_cast<uint32_t>(a[0]), kMaxGroups);
    std::string raw = ReadTraceeBytes(tid, a[1], n * sizeof(uint32_t));
    for (size_t i = 0; i + sizeof(uint32_t) <= raw.size(); i += sizeof(uint32_t)) {
      uint32_t gid;
      std::memcpy(&gid, raw.data() + i, sizeof gid);
      rec.ids.push_back(gid);
    }
  } else if (rec.call == "capset") {
    // struct __user_cap_data_struct[2] {effective, permitted, inheritable} (version 3): the
    // ids are the three 64-bit sets.
    std::string raw = ReadTraceeBytes(tid, a[1], 6 * sizeof(uint32_t));
    uint32_t v[6] = {};
    std::memcpy(v, raw.data(), std::min(raw.size(), sizeof v));
    for (int i = 0; i < 3; ++i) {
      rec.ids.push_back(static_cast<int64_t>(v[i] | (static_cast<uint64_t>(v[i + 3]) << 32)));
    }
  } else {
    rec.ids = {AsInt32(a[0])};
  }
  task.pending = std::move(rec);
}

void SyscallTracer::Impl::DecodeConnect(pid_t tid, Task& task, uint64_t nr, const uint64_t* a) {
  const std::string name = SyscallName(nr);
  const int fd = AsFd(a[0]);
  std::string raw;
  if (name == "connect") {
    raw = ReadTraceeBytes(tid, a[1],
                          std::min<uint64_t>(static_cast<uint32_t>(a[2]), kMaxSockaddrBytes));
  } else if (name == "sendto") {
    if (a[4] == 0) return;
    raw = ReadTraceeBytes(tid, a[4],
                          std::min<uint64_t>(static_cast<uint32_t>(a[5]), kMaxSockaddrBytes));
  } else {  // sendmsg: struct msghdr starts with {void* msg_name; socklen_t msg_namelen;}
    std::string hdr = ReadTraceeBytes(tid, a[1], 2 * sizeof(uint64_t));
    if (hdr.size() < 2 * sizeof(uint64_t)) return;
    uint64_t name_addr;
    uint32_t name_len;
    std::memcpy(&name_addr, hdr.data(), sizeof name_addr);
    std::memcpy(&name_len, hdr.data() + sizeof name_addr, sizeof name_len);
    if (name_addr == 0) return;
    raw = ReadTraceeBytes(tid, name_addr, std::min<uint64_t>(name_len, kMaxSockaddrBytes));
  }
  std::optional<SocketAddress> addr = DecodeSockaddr(raw);
  if (!addr) return;
  std::optional<int> type = TraceeSocketType(task.tgid, fd);
  const bool datagram = type && *type == SOCK_DGRAM;
  if (name != "connect") {
    // A datagram sent with an address is a "connection" of its own; a stream socket ignores
    // the address. Each destination is recorded once per process, so a flood fills no cap.
    if (!datagram) return;
    if (!datagram_targets_.emplace(task.tgid, addr->family, addr->address, addr->port).second) {
      return;
    }
  }
  ConnectRecord rec;
  rec.pid = task.tgid;
  rec.at_ms = NowMs();
  rec.family = addr->family;
  rec.address = addr->address;
  rec.port = addr->port;
  if (addr->family != "unix" && type) {
    rec.protocol = *type == SOCK_STREAM ? "tcp" : datagram ? "udp" : "";
  }
  task.pending = std::move(rec);
}

void SyscallTracer::Impl::DecodePrivileged(pid_t tid, Task& task, uint64_t nr, const uint64_t* a) {
  PrivilegedCall rec;
  rec.pid = task.tgid;
  rec.at_ms = NowMs();
  rec.call = SyscallName(nr);
  const std::string& c = rec.call;
  auto str = [&](uint64_t addr) { return ReadTraceeString(tid, addr, kMaxPathBytes).value_or(""); };
  if (c == "mount") {
    rec.detail = "source=" + str(a[0]) + " target=" + PathArg(tid, AT_FDCWD, a[1]) +
                 " type=" + str(a[2]) + " flags=" + Hex(a[3]);
  } else if (c == "umount2" || c == "chroot" || c == "acct" || c == "swapon" || c == "swapoff") {
    rec.detail = PathArg(tid, AT_FDCWD, a[0]);
  } else if (c == "pivot_root") {
    rec.detail =
        "new_root=" + PathArg(tid, AT_FDCWD, a[0]) + " put_old=" + PathArg(tid, AT_FDCWD, a[1]);
  } else if (c == "ptrace") {
    rec.detail = PtraceRequestName(static_cast<int64_t>(a[0]));
    if (static_cast<int64_t>(a[0]) != PTRACE_TRACEME)
      rec.detail += " pid " + std::to_string(AsInt32(a[1]));
  } else if (c == "process_vm_writev" || c == "perf_event_open") {
    rec.detail = "pid " + std::to_string(AsInt32(a[0]));
  } else if (c == "delete_module") {
    rec.detail = str(a[0]);
  } else if (c == "init_module") {
    rec.detail = "image of " + std::to_string(a[1]) + " bytes";
  } else if (c == "finit_module" || c == "setns") {
    rec.detail = TraceeFdPath(tid, AsFd(a[0]));
    if (c == "setns") rec.detail += " nstype=" + Hex(a[1]);
  } else if (c == "kexec_file_load") {
    rec.detail = "kernel " + TraceeFdPath(tid, AsFd(a[0]));
  } else if (c == "unshare") {
    rec.detail = "flags=" + Hex(a[0]);
  } else if (c == "personality") {
    if (static_cast<uint32_t>(a[0]) == 0xffffffffu) return;  // a query, changes nothing
    rec.detail = "persona=" + Hex(a[0]);
  } else if (c == "add_key" || c == "request_key") {
    rec.detail = "type=" + str(a[0]) + " description=" + str(a[1]);
  } else if (c == "sethostname" || c == "setdomainname") {
    rec.detail = ReadTraceeBytes(tid, a[0], std::min<uint64_t>(a[1], 64));
  } else if (c == "bpf" || c == "keyctl" || c == "syslog") {
    rec.detail = (c == "syslog" ? "type " : "cmd ") + std::to_string(AsInt32(a[0]));
  } else if (c == "iopl" || c == "ioperm") {
    rec.detail = c == "iopl" ? "level " + std::to_string(a[0])
                             : "ports " + Hex(a[0]) + "+" + std::to_string(a[1]);
  }
  task.pending = std::move(rec);
}

void SyscallTracer::Impl::DecodeSignal(pid_t tid, Task& task, uint64_t nr, const uint64_t* a) {
  const std::string name = SyscallName(nr);
  SignalRecord rec;
  rec.pid = task.tgid;
  rec.at_ms = NowMs();
  const bool thread_directed = name == "tgkill" || name == "rt_tgsigqueueinfo";
  rec.target = static_cast<pid_t>(AsInt32(a[0]));
  rec.signal = static_cast<int>(AsInt32(thread_directed ? a[2] : a[1]));
  if (rec.signal == 0) return;  // an existence probe; nothing is delivered
  // Signals to itself (raise, abort, a thread poking a sibling) are not behaviour. Targets are
  // numbered in the sample's pid namespace, so compare with its own namespace pid.
  ProcessInfo& info = processes_[task.tgid];
  if (!info.namespace_pid) info.namespace_pid = TraceeNamespacePid(task.tgid);
  if (info.namespace_pid && rec.target == *info.namespace_pid) return;
  if (name == "tkill") {
    std::optional<pid_t> own_tid = TraceeNamespacePid(tid);
    if (own_tid && rec.target == *own_tid) return;
  }
  task.pending = std::move(rec);
}

SyscallTracer::SyscallTracer(std::chrono::steady_clock::time_point origin, TracerLimits limits)
    : impl_(std::make_unique<Impl>(origin, limits)) {}
SyscallTracer::~SyscallTracer() = default;
Status SyscallTracer::Attach(pid_t pid) { return impl_->Attach(pid); }
Result<Trace> SyscallTracer::Run(pid_t quiet_pid) { return impl_->Run(quiet_pid); }

}  // namespace quell::sandbox
