// DnsSteering: the nftables table that sends the host's DNS queries to the agent's DNS filter,
// `inet quell_dns`, one nat output chain:
//
//   meta mark <mark> return            the filter's own upstream queries (SO_MARK) pass
//   meta skuid { uids } return         a local stub resolver's own upstream queries pass
//   ip daddr != 127.0.0.0/8 return     only in loopback-only mode (see below)
//   ip6 daddr != ::1 return            ditto
//   udp/tcp dport 53 redirect to :<port>   (IPv4 -> 127.0.0.1, IPv6 -> ::1)
//
// Only locally generated queries are steered (the output hook): this is the host's own DNS,
// not a router's. When the host's resolv.conf names a loopback resolver (a stub such as
// systemd-resolved on 127.0.0.53 or dnsmasq), the filter forwards to that stub, and the stub's
// own queries to its upstreams must not come back to the filter. They are told apart by the
// uid owning the stub's port-53 socket (from /proc/net/udp); when that uid is root — no way to
// tell the stub from other root processes — only queries to loopback resolvers are steered
// (programs that query remote servers directly then pass; logged as a warning).
//
// The table exists only while Install()ed; Remove() is idempotent. Thread-safe (serialised).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/indicators/nft_runner.h"
#include "common/status.h"

namespace quell::agent {

inline constexpr uint32_t kDnsFilterMark = 0x51d5;  // the filter's upstream sockets (SO_MARK)

struct DnsSteeringPlan {
  uint16_t port = 0;      // the filter's port on 127.0.0.1 (and ::1 when `v6`)
  bool v6 = true;         // the filter also listens on ::1: steer IPv6 queries too
  uint32_t mark = kDnsFilterMark;
  std::set<uint32_t> exempt_uids;  // local stub resolvers' uids (never 0)
  bool loopback_only = false;      // steer only queries to loopback addresses
  auto operator<=>(const DnsSteeringPlan&) const = default;
};

// The nft script that creates (replacing) the table for `plan`; one transaction.
std::string DnsSteeringScript(std::string_view table, const DnsSteeringPlan& plan);

// The uids owning sockets bound to local port 53 in the text of /proc/net/udp or
// /proc/net/udp6 (malformed lines are skipped).
std::set<uint32_t> DnsListenerUids(std::string_view proc_net_udp);

// The plan for the filter on `port`, given the host's nameservers (numeric addresses, from
// resolv.conf) and the uids of local port-53 listeners.
DnsSteeringPlan PlanDnsSteering(uint16_t port, bool v6, const std::vector<std::string>& nameservers,
                                const std::set<uint32_t>& listener_uids);

class DnsSteering {
 public:
  // `nft` must outlive this.
  explicit DnsSteering(NftRunner& nft, std::string table = "quell_dns");

  // Makes the table match `plan` (nothing is run when it already does).
  Status Install(const DnsSteeringPlan& plan);
  // Removes the table (whether or not this object installed it: a table left by an agent
  // that was killed is removed at the next start). Idempotent.
  Status Remove();
  std::optional<DnsSteeringPlan> Installed() const;

 private:
  NftRunner& nft_;
  const std::string table_;
  mutable std::mutex mutex_;
  std::optional<DnsSteeringPlan> installed_;
};

}  // namespace quell::agent
