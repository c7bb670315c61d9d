// IndicatorEnforcer: keeps enforcement in step with the IndicatorStore.
//   - the exec gate: open in "indicators only" mode while a live Block/BlockAndRemediate file
//     hash indicator exists (`set_file_gate`, RestrictionController::SetIndicatorGate);
//   - the IP blocklist: the nftables sets hold exactly the live blocked ranges;
//   - the written-file watch: on while a live BlockAndRemediate file-hash indicator exists
//     (`set_written_file_watch`);
//   - the DNS filter: running, with the host's DNS steered to it, only while a live
//     DomainName/Url indicator needs it (`set_dns_filter`);
//   - expiry: Tick() purges indicators once the earliest expiry has passed, which rebuilds
//     both (an expired indicator stops applying without a message from the server);
//   - hits: Tick() polls the IP counters every `hit_poll_interval`.
// Apply() runs at start (after the store restored, before the agent goes online) and, through
// the store's OnChange, after every delta. Errors are logged and retried on the next Apply/Tick.
//
// Thread-safety: Apply and Tick are serialised by a mutex.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>

#include "agent/indicators/indicator_store.h"
#include "agent/indicators/ip_blocklist.h"
#include "common/clock.h"
#include "common/status.h"

namespace quell::agent {

struct IndicatorEnforcerOptions {
  std::function<Status(bool on)> set_file_gate;  // empty: file indicators not enforced at exec
  // Hashes blocked by something other than indicators (quarantined files): they need the exec
  // gate too. Empty: none.
  std::function<size_t()> other_file_blocks;
  IpBlocklist* ip_blocklist = nullptr;            // nullptr: IP indicators not enforced
  // Starts (true) or stops (false) the written-file watch: on while a live BlockAndRemediate
  // file-hash indicator exists. Called on every Apply (cheap when nothing changes). Empty:
  // BlockAndRemediate acts only at exec and scan.
  std::function<Status(bool on)> set_written_file_watch;
  // Starts (true) or stops (false) the DNS filter and its steering table: on while a live
  // DomainName/Url indicator with Audit/Block/BlockAndRemediate exists. Called on every
  // Apply (it must be cheap when nothing changes). Empty: domains not enforced.
  std::function<Status(bool on)> set_dns_filter;
  const Clock* clock = nullptr;                   // nullptr = the system clock
  std::chrono::milliseconds hit_poll_interval{10'000};
};

class IndicatorEnforcer {
 public:
  // `store` must outlive this. Does not register itself: call store.OnChange([&]{ Apply(); }).
  IndicatorEnforcer(IndicatorStore& store, IndicatorEnforcerOptions options);

  // Brings the gate and the IP sets in line with the store. The first error is returned
  // (the other part is still attempted).
  Status Apply();
  // Periodic (about every second): purges expired indicators, polls hits when due.
  void Tick();

  bool file_gate_wanted() const;
  bool dns_filter_wanted() const;
  UnixMillis next_expiry() const;

 private:
  Status ApplyLocked();

  IndicatorStore& store_;
  IndicatorEnforcerOptions options_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  bool file_gate_ = false;
  bool written_file_watch_ = false;
  bool dns_filter_ = false;
  bool dirty_ = true;  // the last Apply failed somewhere: retry on Tick
  UnixMillis next_expiry_ = 0;
  UnixMillis next_poll_ = 0;
};

}  // namespace quell::agent
