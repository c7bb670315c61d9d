// The x86_64 system calls the tracer decodes, by number, and the pure decoding of what they
// pass (socket addresses). Pure functions: no I/O, unit-tested without root.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace quell::sandbox {

// What the tracer does with a system call.
enum class SyscallClass {
  kIgnored,     // not recorded
  kFile,        // open/creat/rename/unlink/rmdir/chmod/truncate family
  kExec,        // execve, execveat
  kIdentity,    // setuid ... capset
  kConnect,     // connect, sendto, sendmsg
  kPrivileged,  // module loading, kexec, mount, ptrace, bpf, ... (see syscall_names.cc)
  kSignal,      // kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo
};

// The class of x86_64 syscall `nr` (64-bit ABI only).
SyscallClass ClassifySyscall(uint64_t nr);

// The syscall's name for the classes above ("openat", "mount", ...), or "syscall_<nr>".
std::string SyscallName(uint64_t nr);

// A decoded struct sockaddr (inet, inet6 or unix).
struct SocketAddress {
  std::string family;   // "inet", "inet6", "unix"
  std::string address;  // dotted quad, RFC 5952 text, or the unix path ("@name" for abstract)
  uint16_t port = 0;
};

// Decodes the bytes of a struct sockaddr as a process passed them (`bytes.size()` is its
// addrlen). nullopt for other families (netlink, AF_UNSPEC, ...) or truncated input.
std::optional<SocketAddress> DecodeSockaddr(std::string_view bytes);

// The name of a ptrace request ("PTRACE_ATTACH"), or its number.
std::string PtraceRequestName(int64_t request);

}  // namespace quell::sandbox
