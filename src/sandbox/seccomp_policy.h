// The seccomp policy every process in the sandbox runs under: allow by default, refuse with
// EPERM what a sample never needs for its work and what would reach past the sandbox
// (module loading, kexec, mount, ptrace, bpf, ...). The tracer still sees each attempt
// (ptrace reports a syscall before seccomp rejects it): the attempt is the behaviour.
#pragma once

#include <span>
#include <string_view>

#include "common/status.h"

namespace quell::sandbox {

// The system calls the policy refuses, by name.
std::span<const std::string_view> SeccompDeniedCalls();

// Loads the policy into the calling thread (and so every process it starts). Sets
// no_new_privs. x86_64 and 32-bit x86 calls are both covered; x32 calls are refused.
// Async-signal-unsafe (allocates): call it in the sandbox's init before the sample forks.
Status LoadSeccompPolicy();

}  // namespace quell::sandbox
