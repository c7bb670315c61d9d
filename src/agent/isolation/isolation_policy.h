// What an isolated host may still talk to, and the nftables table that enforces it.
// Pure: no I/O, so every ruleset the agent can produce is unit-tested as text.
//
// The rules are stateless (address + port pairs in both directions, no conntrack): the
// chains run at priority -300, before any other table and before output-path conntrack, and
// an established server stream survives the switch because its packets match the pair.
// The price: a host on an allowed address can reach the isolated host from the allowed
// port. Every address is pinned as an IP literal; the ruleset never names a host.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quell::agent {

enum class IsolationType { kNone, kFull, kSelective };

// "None", "Full", "Selective" — the Defender API's IsolationType spelling.
std::string_view IsolationTypeName(IsolationType type);
// Exact names above; InvalidArgument otherwise.
Result<IsolationType> ParseIsolationType(std::string_view name);

enum class AllowProtocol { kAny, kTcp, kUdp };

// One Selective-isolation exception: traffic to and from `cidr`, limited to the remote
// `port` when it is not 0 and to `protocol` (kAny with a port means TCP or UDP).
struct AllowRule {
  std::string cidr;  // canonical "address/prefix" with no host bits, e.g. "10.77.0.12/32"
  uint16_t port = 0;
  AllowProtocol protocol = AllowProtocol::kAny;

  bool IsIpv6() const { return cidr.find(':') != std::string::npos; }
  // The canonical text form, accepted back by ParseAllowRule, e.g. "fd77::/64:443/tcp".
  std::string ToString() const;
  bool operator==(const AllowRule&) const = default;
};

// Parses ADDRESS[/PREFIX][:PORT][/PROTOCOL], e.g. "10.77.0.12/32:22", "fd77::/64:443/tcp",
// "192.0.2.0/24", "10.0.0.1:53/udp", "[fd77::1]:22". PROTOCOL is tcp, udp or any (default
// any); PORT 1-65535 (absent = any port); a missing prefix means one host. An IPv6 address
// with a port needs a prefix or brackets ("fd77::1:22" is the address fd77::1:22).
// InvalidArgument names the input and what is wrong with it.
Result<AllowRule> ParseAllowRule(std::string_view text);

inline constexpr char kIsolationTableFamily[] = "inet";
inline constexpr char kIsolationTableName[] = "quell_isolation";

struct IsolationPolicy {
  IsolationType type = IsolationType::kFull;  // REQUIRES: not kNone
  std::vector<std::string> server_addresses;  // IPv4/IPv6 literals the server name resolved to
  uint16_t server_port = 0;
  std::vector<AllowRule> allow;               // used only for kSelective

  bool operator==(const IsolationPolicy&) const = default;
};

// The complete "table inet quell_isolation { ... }" definition for `policy`, for
// Firewall::ReplaceTable. Input, forward and output chains drop by default; what passes:
//  - loopback;
//  - TCP to/from each pinned server address and the server port;
//  - for kSelective, traffic to/from each allow rule;
//  - IPv6 neighbour and router discovery (ICMPv6 types 133-136 with hop limit 255, which
//    only on-link senders can produce), but only when some permitted peer is IPv6: without
//    it the host cannot resolve its next hop once the neighbour cache entry goes stale, and
//    the server link dies minutes after isolating. IPv4's ARP is not filtered by an inet
//    table, so IPv4 needs no such exception.
// Everything else is dropped, ICMP and ICMPv6 echo included, and so is forwarded traffic
// (containers or VMs on an isolated host are isolated with it).
std::string BuildIsolationRuleset(const IsolationPolicy& policy);

}  // namespace quell::agent
