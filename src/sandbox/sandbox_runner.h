// RunSandbox: one detonation, from the sample file on the host to the observations.
//
// The supervisor (the caller, root on the host) makes its mount namespace private, mounts a
// size-limited tmpfs scratch on a temporary directory, plans a throw-away root in it
// (sandbox_init.h), creates the cgroups (cgroup_limits.h) and clones the sandbox's init into
// new user, pid, mount, network, uts and ipc namespaces. Init builds the root, configures the
// fake network (sandbox_network.h), loads the seccomp policy (seccomp_policy.h) and waits; the
// supervisor attaches the tracer (syscall_tracer.h), serves the fake network (fake_network.h),
// releases init, which forks the sample. A wall-clock timer and SIGTERM/SIGINT kill the
// sandbox's init, and with it the whole pid namespace. Afterwards the supervisor hashes what
// the sample left in its writable places (dropped_files.h), reads which limits were hit,
// removes the cgroups, unmounts, removes the temporary directory, and returns to the mount
// namespace it was called in. Nothing is left on the host, also on errors and on SIGTERM.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "sandbox/observations.h"

namespace quell::sandbox {

struct SandboxOptions {
  std::string sample_path;  // a regular file
  std::string file_name;    // how the sample is named inside (default: basename)
  std::chrono::seconds wall_clock{120};
  uint64_t memory_bytes = 512ull << 20;
  uint32_t max_pids = 128;
  double cpus = 1.0;  // CPU quota in cores
  uint64_t scratch_bytes = 256ull << 20;
};

// Called on the caller's thread at each stage: "starting", "sample running",
// "collecting dropped files", "cleaning up".
using ProgressFn = std::function<void(std::string_view stage)>;

// Runs the sample and returns what it did. Errors: InvalidArgument for bad options or an
// unsupported file type (sample_kind.h's message); FailedPrecondition when not root;
// Cancelled when SIGTERM or SIGINT arrived during the run (everything is cleaned up first);
// Internal and others when the sandbox itself failed.
// REQUIRES: root; the calling process is single-threaded (the mount namespace is unshared
// and later restored) and waits for no children of its own meanwhile (the tracer reaps with
// waitpid(-1)). SIGTERM and SIGINT are blocked on the calling thread during the call; one
// that arrives is consumed: the sandbox is stopped and removed and the call returns Cancelled.
Result<Observations> RunSandbox(const SandboxOptions& options, const ProgressFn& progress = {});

}  // namespace quell::sandbox
