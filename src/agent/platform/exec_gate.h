// ExecGate: the agent's narrow view of the kernel's execution permission hook (fanotify
// FAN_OPEN_EXEC_PERM), so that the restriction logic is unit-tested with FakeExecGate and the
// real thing only in private-mount-namespace labs.
//
// Scope: a gate guards MOUNTS of the calling process's mount namespace (mount marks, never
// filesystem marks), so a gate opened in a lab host's private mount namespace affects only
// paths resolved in that namespace. Every ExecRequest MUST be answered with Respond; closing
// the gate (or the process dying) releases every waiter with "allow" (the kernel's rule).
//
// Thread-safety: one thread calls Wait/Respond; Mark/Close may be called from another.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell::agent {

// One pending execution: the kernel blocks the exec until it is answered.
struct ExecRequest {
  int fd = -1;       // read-only fd of the file being executed; owned by the gate, valid
                     // until Respond returns
  pid_t pid = 0;     // the process calling execve (still showing its pre-exec image)
  uint64_t id = 0;   // gate-assigned, for logs and fakes
};

struct ExecWait {
  std::vector<ExecRequest> requests;
  bool mounts_changed = false;  // the mount table changed: re-read it and Mark new mounts
  bool overflow = false;        // the queue overflowed (events were lost; never for PERM events
                                // on Linux, but a fake can inject it)
};

class ExecGate {
 public:
  virtual ~ExecGate() = default;

  // Starts receiving permission events (no marks yet). FailedPrecondition if already open.
  virtual Status Open() = 0;

  // Adds a mount mark for the mount at `mount_point` (in the caller's mount namespace).
  // Marking an already marked mount is harmless.
  virtual Status MarkMount(const std::string& mount_point) = 0;

  // Waits up to `timeout` for requests or a mount table change. Ok with nothing on timeout.
  virtual Result<ExecWait> Wait(std::chrono::milliseconds timeout) = 0;

  // Answers one request and releases its fd. An error still releases the fd; the caller
  // counts it (the kernel answers "allow" when the gate closes).
  virtual Status Respond(const ExecRequest& request, bool allow) = 0;

  // Removes every mark and releases every waiter. Idempotent.
  virtual void Close() = 0;

  virtual bool IsOpen() const = 0;
};

}  // namespace quell::agent
