// Test support: run code inside network namespaces the test creates, so that firewall rules
// and traffic never touch the namespace of the machine running the tests.
//
// Each Run* call uses a fresh thread that enters the namespace, because a network namespace
// is per thread: the calling thread (and so the rest of the test binary) never moves.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell::agent::test {

bool IsRoot();

// Runs `body` on a new thread in a new, empty network namespace (only a down loopback),
// which disappears when the thread ends. The body is not run (and an error is returned)
// unless the thread verifiably left the process's namespace.
Status RunInNewNetns(const std::function<void()>& body);

// Runs `body` on a new thread inside the namespace /run/netns/<name>, with the same check.
Status RunInNamedNetns(const std::string& name, const std::function<void()>& body);

// Named namespaces (`ip netns add`) that are deleted, with everything in them, when the
// object is destroyed — also when a test fails half-way.
class ScopedNetnsSet {
 public:
  ScopedNetnsSet() = default;
  ScopedNetnsSet(const ScopedNetnsSet&) = delete;
  ScopedNetnsSet& operator=(const ScopedNetnsSet&) = delete;
  ~ScopedNetnsSet();

  // Adds namespace `name`; REQUIRES: root.
  Status Add(const std::string& name);

  // Runs `ip -n <ns> <args>` (or plain `ip <args>` when ns is empty); error with its output.
  static Status Ip(const std::string& ns, const std::string& args);

 private:
  std::vector<std::string> names_;
};

// Runs a shell command, returns its exit code (-1 if it could not run). Output discarded.
int RunQuiet(const std::string& command);

}  // namespace quell::agent::test
