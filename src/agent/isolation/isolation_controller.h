// IsolationController: the agent's network isolation — decides, applies, verifies, persists
// and re-applies the quell_isolation table through a Firewall.
//
// Invariants: the state file says "isolated" only after the table is in force and the
// server link was proven through it; a host that the state file says is isolated is
// re-isolated by Restore() at start without needing DNS or the server (fail closed).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/isolation/isolation_policy.h"
#include "agent/platform/firewall.h"
#include "common/clock.h"
#include "common/status.h"

namespace quell::agent {

struct IsolationOptions {
  std::string state_path;   // <state_dir>/isolation.json; its directory must exist
  std::string server_host;  // from the agent config: a name or an address literal
  uint16_t server_port = 0;
  std::vector<AllowRule> selective_allow;  // the exceptions of Selective isolation

  // Proves the server is reachable through the rules now in force. Default: a fresh TCP
  // connect to each pinned address with a 3 s timeout; Ok if any connects.
  std::function<Status(const std::vector<std::string>& addresses, uint16_t port)> link_probe;
  // Resolves server_host to address literals when isolating a host that is not isolated
  // yet (once isolated, the pinned addresses are reused: DNS is blocked by then).
  // Default: ResolveServerAddresses.
  std::function<Result<std::vector<std::string>>(const std::string& host)> resolve;
  const Clock* clock = nullptr;  // nullptr = the system clock
};

// Thread-safe; calls are serialised (Isolate holds the lock through the probe, up to a few
// seconds).
class IsolationController {
 public:
  // `firewall` must outlive the controller.
  IsolationController(Firewall& firewall, IsolationOptions options);

  // At agent start, BEFORE any connection: re-applies the persisted isolation, or removes a
  // table left by an Isolate that never completed. An unreadable state file is an error
  // and leaves the firewall as it is.
  Status Restore();

  // Pins the server (resolving it unless already isolated), replaces the table, probes the
  // server link through it and persists the state. Idempotent; also switches between Full
  // and Selective. If the probe fails, the previous table (or none) is put back and the
  // result is Unavailable saying the server link was cut. InvalidArgument for kNone.
  // Result: {"isolationType","pinnedServer":["10.77.0.1:8444"],"allow":[...],"isolatedAt"}.
  Result<nlohmann::json> Isolate(IsolationType type);

  // Removes the table and persists "not isolated". Idempotent.
  // Result: {"isolationType":"None","previousIsolationType":...,"releasedAt":...}.
  Result<nlohmann::json> Release();

  // While isolated: if the table is gone or differs from what was applied, puts it back and
  // returns true so the caller can report the tampering. False when nothing was needed.
  Result<bool> Repair();

  IsolationType Current() const;

 private:
  struct State {
    IsolationPolicy policy;
    UnixMillis isolated_at = 0;
  };

  // Replaces the table with `policy`'s and remembers how the firewall lists it.
  Status Apply(const IsolationPolicy& policy);
  Status RemoveTable();
  // Puts `previous` back in force (or no table); used when a change cannot be completed.
  Status RollBack(const std::optional<State>& previous);
  Status Persist(const std::optional<State>& state);
  nlohmann::json Describe(const State& state) const;
  UnixMillis Now() const;

  Firewall& firewall_;
  const IsolationOptions options_;

  mutable std::mutex mutex_;
  std::optional<State> state_;                  // in force and persisted; nullopt = none
  std::optional<std::string> applied_listing_;  // ReadTable right after the last Apply
};

}  // namespace quell::agent
