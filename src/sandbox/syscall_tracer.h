// SyscallTracer: follows a process and every descendant with ptrace (x86_64) and records what
// observations.h's Trace holds: processes (exec argv, exit), identity changes, file writes,
// renames, deletions and chmods, connections, privileged calls and signals to others.
//
// How: PTRACE_SEIZE with TRACEFORK|TRACEVFORK|TRACECLONE|TRACEEXEC|TRACESYSGOOD|EXITKILL, a
// waitpid(-1, __WALL) loop, PTRACE_GET_SYSCALL_INFO at syscall entry (arguments; strings and
// sockaddrs read then with process_vm_readv) and exit (the result). Real signals are always
// passed on; group-stops are honoured with PTRACE_LISTEN. The tracer sees a call before seccomp
// refuses it, so refused attempts are recorded with their -EPERM result.
//
// Threading: not thread-safe. Attach and Run must be called from the same thread (ptrace
// binds a tracee to the thread that attached it).
// Only the 64-bit syscall ABI is decoded; i386 (int 0x80) calls are not recorded.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>

#include "common/status.h"
#include "sandbox/observations.h"

namespace quell::sandbox {

struct TracerLimits {
  size_t max_records = 20000;   // over all record kinds; then Trace::truncated
  size_t max_argv = 64;         // argv items kept per exec
  size_t max_arg_bytes = 4096;  // bytes kept per argv item
};

class SyscallTracer {
 public:
  // `origin`: the release time; all at_ms / started_ms are milliseconds since it.
  explicit SyscallTracer(std::chrono::steady_clock::time_point origin, TracerLimits limits = {});
  ~SyscallTracer();
  SyscallTracer(const SyscallTracer&) = delete;
  SyscallTracer& operator=(const SyscallTracer&) = delete;

  // PTRACE_SEIZE on `pid` with the options above, then PTRACE_INTERRUPT: `pid` stays stopped
  // until Run resumes it, so it may be released (e.g. through a pipe) before Run is called.
  // REQUIRES: `pid` is a child of this process (or ptrace-able by it), not yet traced.
  Status Attach(pid_t pid);

  // Follows every descendant until all traced tasks are gone, and returns what they did.
  // Syscalls of `quiet_pid` (the sandbox's init) are not recorded, but its children are
  // followed and its first child is the sample (parent_pid 0). When `quiet_pid` is not an
  // attached pid (e.g. 0), the attached process itself is the sample.
  // Waits with waitpid(-1, __WALL): it also reaps untraced children of this process, so the
  // caller must have no other children it waits for while Run runs.
  // Errors only when nothing could be traced (Run without Attach); a tracee vanishing or
  // passing bad pointers is part of normal operation.
  Result<Trace> Run(pid_t quiet_pid);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quell::sandbox
