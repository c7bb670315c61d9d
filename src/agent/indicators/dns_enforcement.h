// DnsEnforcement: IndicatorEnforcer's `set_dns_filter`. On: starts the filter, then installs
// the steering for its port (re-planned on every call from resolv.conf and the port-53
// listeners in <proc_net>/udp and udp6, so a changed local stub is followed). Off: removes the
// steering, then stops the filter — in that order both ways, so queries are never steered to
// a filter that is not listening. The first Set(false) removes the table even if this process
// did not install it (one left by an older agent). The destructor turns it off (the
// agent's stop). Thread-safe (serialised).
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "agent/indicators/dns_filter.h"
#include "agent/indicators/dns_steering.h"
#include "common/status.h"

namespace quell::agent {

class DnsEnforcement {
 public:
  // `filter` and `steering` must outlive this.
  DnsEnforcement(DnsFilter& filter, DnsSteering& steering, std::string proc_net = "/proc/net");
  ~DnsEnforcement();
  Status Set(bool on);

 private:
  DnsFilter& filter_;
  DnsSteering& steering_;
  const std::string proc_net_;
  std::mutex mutex_;
  std::optional<bool> on_;  // unknown until the first Set
};

}  // namespace quell::agent
