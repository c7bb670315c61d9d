#include "sandbox/syscall_names.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <array>
#include <cstddef>
#include <cstring>

#if !defined(__x86_64__)
#error "quell-sandbox traces x86_64 system calls only"
#endif

namespace quell::sandbox {
namespace {

constexpr uint64_t kSysFchmodat2 = 452;  // Linux 6.6; glibc 2.36 has no SYS_fchmodat2

struct Entry {
  uint64_t nr;
  const char* name;
  SyscallClass cls;
};

// The privileged list: calls a sample never needs for ordinary work, each a known step of
// rootkits, container escapes or anti-analysis (loading kernel code, replacing the kernel,
// changing mounts or namespaces, reading/writing other processes, touching the clock, keys
// or the kernel log).
constexpr Entry kEntries[] = {
    {SYS_open, "open", SyscallClass::kFile},
    {SYS_openat, "openat", SyscallClass::kFile},
    {SYS_openat2, "openat2", SyscallClass::kFile},
    {SYS_creat, "creat", SyscallClass::kFile},
    {SYS_rename, "rename", SyscallClass::kFile},
    {SYS_renameat, "renameat", SyscallClass::kFile},
    {SYS_renameat2, "renameat2", SyscallClass::kFile},
    {SYS_unlink, "unlink", SyscallClass::kFile},
    {SYS_unlinkat, "unlinkat", SyscallClass::kFile},
    {SYS_rmdir, "rmdir", SyscallClass::kFile},
    {SYS_chmod, "chmod", SyscallClass::kFile},
    {SYS_fchmod, "fchmod", SyscallClass::kFile},
    {SYS_fchmodat, "fchmodat", SyscallClass::kFile},
    {kSysFchmodat2, "fchmodat2", SyscallClass::kFile},
    {SYS_truncate, "truncate", SyscallClass::kFile},
    {SYS_execve, "execve", SyscallClass::kExec},
    {SYS_execveat, "execveat", SyscallClass::kExec},
    {SYS_setuid, "setuid", SyscallClass::kIdentity},
    {SYS_setgid, "setgid", SyscallClass::kIdentity},
    {SYS_setreuid, "setreuid", SyscallClass::kIdentity},
    {SYS_setregid, "setregid", SyscallClass::kIdentity},
    {SYS_setresuid, "setresuid", SyscallClass::kIdentity},
    {SYS_setresgid, "setresgid", SyscallClass::kIdentity},
    {SYS_setfsuid, "setfsuid", SyscallClass::kIdentity},
    {SYS_setfsgid, "setfsgid", SyscallClass::kIdentity},
    {SYS_setgroups, "setgroups", SyscallClass::kIdentity},
    {SYS_capset, "capset", SyscallClass::kIdentity},
    {SYS_connect, "connect", SyscallClass::kConnect},
    {SYS_sendto, "sendto", SyscallClass::kConnect},
    {SYS_sendmsg, "sendmsg", SyscallClass::kConnect},
    {SYS_kill, "kill", SyscallClass::kSignal},
    {SYS_tkill, "tkill", SyscallClass::kSignal},
    {SYS_tgkill, "tgkill", SyscallClass::kSignal},
    {SYS_rt_sigqueueinfo, "rt_sigqueueinfo", SyscallClass::kSignal},
    {SYS_rt_tgsigqueueinfo, "rt_tgsigqueueinfo", SyscallClass::kSignal},
    {SYS_init_module, "init_module", SyscallClass::kPrivileged},
    {SYS_finit_module, "finit_module", SyscallClass::kPrivileged},
    {SYS_delete_module, "delete_module", SyscallClass::kPrivileged},
    {SYS_kexec_load, "kexec_load", SyscallClass::kPrivileged},
    {SYS_kexec_file_load, "kexec_file_load", SyscallClass::kPrivileged},
    {SYS_mount, "mount", SyscallClass::kPrivileged},
    {SYS_umount2, "umount2", SyscallClass::kPrivileged},
    {SYS_pivot_root, "pivot_root", SyscallClass::kPrivileged},
    {SYS_fsopen, "fsopen", SyscallClass::kPrivileged},
    {SYS_fsmount, "fsmount", SyscallClass::kPrivileged},
    {SYS_move_mount, "move_mount", SyscallClass::kPrivileged},
    {SYS_open_tree, "open_tree", SyscallClass::kPrivileged},
    {SYS_mount_setattr, "mount_setattr", SyscallClass::kPrivileged},
    {SYS_ptrace, "ptrace", SyscallClass::kPrivileged},
    {SYS_process_vm_writev, "process_vm_writev", SyscallClass::kPrivileged},
    {SYS_bpf, "bpf", SyscallClass::kPrivileged},
    {SYS_perf_event_open, "perf_event_open", SyscallClass::kPrivileged},
    {SYS_userfaultfd, "userfaultfd", SyscallClass::kPrivileged},
    {SYS_reboot, "reboot", SyscallClass::kPrivileged},
    {SYS_swapon, "swapon", SyscallClass::kPrivileged},
    {SYS_swapoff, "swapoff", SyscallClass::kPrivileged},
    {SYS_setns, "setns", SyscallClass::kPrivileged},
    {SYS_unshare, "unshare", SyscallClass::kPrivileged},
    {SYS_keyctl, "keyctl", SyscallClass::kPrivileged},
    {SYS_add_key, "add_key", SyscallClass::kPrivileged},
    {SYS_request_key, "request_key", SyscallClass::kPrivileged},
    {SYS_open_by_handle_at, "open_by_handle_at", SyscallClass::kPrivileged},
    {SYS_iopl, "iopl", SyscallClass::kPrivileged},
    {SYS_ioperm, "ioperm", SyscallClass::kPrivileged},
    {SYS_chroot, "chroot", SyscallClass::kPrivileged},
    {SYS_acct, "acct", SyscallClass::kPrivileged},
    {SYS_settimeofday, "settimeofday", SyscallClass::kPrivileged},
    {SYS_clock_settime, "clock_settime", SyscallClass::kPrivileged},
    {SYS_adjtimex, "adjtimex", SyscallClass::kPrivileged},
    {SYS_clock_adjtime, "clock_adjtime", SyscallClass::kPrivileged},
    {SYS_syslog, "syslog", SyscallClass::kPrivileged},
    {SYS_personality, "personality", SyscallClass::kPrivileged},
    {SYS_sethostname, "sethostname", SyscallClass::kPrivileged},
    {SYS_setdomainname, "setdomainname", SyscallClass::kPrivileged},
    {SYS_vhangup, "vhangup", SyscallClass::kPrivileged},
    {SYS_quotactl, "quotactl", SyscallClass::kPrivileged},
};

const Entry* Find(uint64_t nr) {
  for (const Entry& e : kEntries) {
    if (e.nr == nr) return &e;
  }
  return nullptr;
}

}  // namespace

SyscallClass ClassifySyscall(uint64_t nr) {
  // A dense table would be faster; every stop already costs two context switches, and this
  // linear scan of ~80 entries is far below that.
  const Entry* e = Find(nr);
  return e ? e->cls : SyscallClass::kIgnored;
}

std::string SyscallName(uint64_t nr) {
  const Entry* e = Find(nr);
  return e ? std::string(e->name) : "syscall_" + std::to_string(nr);
}

std::optional<SocketAddress> DecodeSockaddr(std::string_view bytes) {
  if (bytes.size() < sizeof(sa_family_t)) return std::nullopt;
  sa_family_t family;
  std::memcpy(&family, bytes.data(), sizeof family);
  SocketAddress out;
  if (family == AF_INET) {
    sockaddr_in in{};
    if (bytes.size() < sizeof in) return std::nullopt;
    std::memcpy(&in, bytes.data(), sizeof in);
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
    out.family = "inet";
    out.address = text;
    out.port = ntohs(in.sin_port);
    return out;
  }
  if (family == AF_INET6) {
    sockaddr_in6 in6{};
    if (bytes.size() < sizeof in6) return std::nullopt;
    std::memcpy(&in6, bytes.data(), sizeof in6);
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
    out.family = "inet6";
    out.address = text;
    out.port = ntohs(in6.sin6_port);
    return out;
  }
  if (family == AF_UNIX) {
    std::string_view path = bytes.substr(offsetof(sockaddr_un, sun_path));
    out.family = "unix";
    if (!path.empty() && path[0] == '\0') {
      // Abstract namespace: the name is every byte after the NUL, up to addrlen.
      out.address = "@" + std::string(path.substr(1));
    } else {
      out.address = std::string(path.substr(0, path.find('\0')));
    }
    return out;
  }
  return std::nullopt;
}

std::string PtraceRequestName(int64_t request) {
  switch (request) {
    case PTRACE_TRACEME: return "PTRACE_TRACEME";
    case PTRACE_PEEKTEXT: return "PTRACE_PEEKTEXT";
    case PTRACE_PEEKDATA: return "PTRACE_PEEKDATA";
    case PTRACE_POKETEXT: return "PTRACE_POKETEXT";
    case PTRACE_POKEDATA: return "PTRACE_POKEDATA";
    case PTRACE_CONT: return "PTRACE_CONT";
    case PTRACE_KILL: return "PTRACE_KILL";
    case PTRACE_GETREGS: return "PTRACE_GETREGS";
    case PTRACE_SETREGS: return "PTRACE_SETREGS";
    case PTRACE_ATTACH: return "PTRACE_ATTACH";
    case PTRACE_DETACH: return "PTRACE_DETACH";
    case PTRACE_SYSCALL: return "PTRACE_SYSCALL";
    case PTRACE_SEIZE: return "PTRACE_SEIZE";
    case PTRACE_INTERRUPT: return "PTRACE_INTERRUPT";
    default: return "request " + std::to_string(request);
  }
}

}  // namespace quell::sandbox
