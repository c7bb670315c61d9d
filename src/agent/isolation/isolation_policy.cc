#include "agent/isolation/isolation_policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>

namespace quell::agent {
namespace {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
  int bits() const { return v6 ? 128 : 32; }
};

std::optional<IpAddress> ParseIp(std::string_view text) {
  const std::string s(text);
  IpAddress ip;
  if (::inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  ip.v6 = true;
  if (::inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) return ip;
  return std::nullopt;
}

std::string FormatIp(const IpAddress& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), buf, sizeof buf);
  return buf;
}

IpAddress Masked(IpAddress ip, int prefix) {
  for (int i = 0; i < ip.bits() / 8; ++i) {
    int keep = std::clamp(prefix - i * 8, 0, 8);
    ip.bytes[i] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  return ip;
}

std::optional<unsigned> ParseNumber(std::string_view digits, unsigned max) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value > max) {
    return std::nullopt;
  }
  return value;
}

std::string ProtocolName(AllowProtocol protocol) {
  switch (protocol) {
    case AllowProtocol::kTcp: return "tcp";
    case AllowProtocol::kUdp: return "udp";
    case AllowProtocol::kAny: return "any";
  }
  return "any";
}

// "ip daddr 10.0.0.1" or "ip6 saddr { fd00::1, fd00::2 }".
std::string AddressMatch(bool v6, const char* direction, const std::vector<std::string>& addresses) {
  std::string match = std::string(v6 ? "ip6 " : "ip ") + direction + " ";
  if (addresses.size() == 1) return match + addresses.front();
  match += "{ ";
  for (size_t i = 0; i < addresses.size(); ++i) match += (i ? ", " : "") + addresses[i];
  return match + " }";
}

// The transport part of an allow rule seen from this host; `port_side` is "dport" for
// packets to the peer and "sport" for packets from it.
std::string TransportMatch(const AllowRule& rule, const char* port_side) {
  const std::string protocol = ProtocolName(rule.protocol);
  if (rule.port == 0) {
    return rule.protocol == AllowProtocol::kAny ? "" : " meta l4proto " + protocol;
  }
  const std::string port = std::string(port_side) + " " + std::to_string(rule.port);
  if (rule.protocol == AllowProtocol::kAny) return " meta l4proto { tcp, udp } th " + port;
  return " " + protocol + " " + port;
}

}  // namespace

std::string_view IsolationTypeName(IsolationType type) {
  switch (type) {
    case IsolationType::kNone: return "None";
    case IsolationType::kFull: return "Full";
    case IsolationType::kSelective: return "Selective";
  }
  return "None";
}

Result<IsolationType> ParseIsolationType(std::string_view name) {
  for (IsolationType type : {IsolationType::kNone, IsolationType::kFull, IsolationType::kSelective}) {
    if (name == IsolationTypeName(type)) return type;
  }
  return InvalidArgument("unknown isolation type '" + std::string(name) +
                         "' (expected None, Full or Selective)");
}

std::string AllowRule::ToString() const {
  std::string text = cidr;
  if (port != 0) text += ":" + std::to_string(port);
  if (protocol != AllowProtocol::kAny) text += "/" + ProtocolName(protocol);
  return text;
}

Result<AllowRule> ParseAllowRule(std::string_view text) {
  auto fail = [text](const std::string& why) -> Status {
    return InvalidArgument("allow rule '" + std::string(text) + "': " + why);
  };
  if (text.empty()) return fail("empty; expected ADDRESS[/PREFIX][:PORT][/tcp|udp|any]");

  AllowRule rule;
  std::string_view rest = text;

  // A protocol is the only part that starts with a letter after a '/'.
  size_t last_slash = rest.rfind('/');
  if (last_slash != std::string_view::npos && last_slash + 1 < rest.size() &&
      std::isalpha(static_cast<unsigned char>(rest[last_slash + 1]))) {
    std::string_view protocol = rest.substr(last_slash + 1);
    if (protocol == "tcp") {
      rule.protocol = AllowProtocol::kTcp;
    } else if (protocol == "udp") {
      rule.protocol = AllowProtocol::kUdp;
    } else if (protocol != "any") {
      return fail("unknown protocol '" + std::string(protocol) + "' (expected tcp, udp or any)");
    }
    rest = rest.substr(0, last_slash);
  }

  std::string_view address;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return fail("missing ']'");
    address = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
  } else if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    address = rest.substr(0, slash);
    rest = rest.substr(slash);
  } else if (ParseIp(rest)) {
    address = rest;
    rest = {};
  } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    address = rest.substr(0, colon);
    rest = rest.substr(colon);
    if (address.find(':') != std::string_view::npos) {
      return fail("an IPv6 address with a port needs brackets or a prefix, e.g. [fd00::1]:22");
    }
  } else {
    address = rest;
    rest = {};
  }

  std::optional<IpAddress> ip = ParseIp(address);
  if (!ip) return fail("'" + std::string(address) + "' is not an IPv4 or IPv6 address");

  int prefix = ip->bits();
  if (!rest.empty() && rest.front() == '/') {
    size_t end = std::min(rest.find(':'), rest.size());
    std::optional<unsigned> parsed = ParseNumber(rest.substr(1, end - 1), ip->bits());
    if (!parsed) return fail("prefix length must be 0-" + std::to_string(ip->bits()));
    prefix = static_cast<int>(*parsed);
    rest = rest.substr(end);
  }
  if (!rest.empty() && rest.front() == ':') {
    std::optional<unsigned> port = ParseNumber(rest.substr(1), 65535);
    if (!port || *port == 0) return fail("port must be 1-65535 (leave it out for any port)");
    rule.port = static_cast<uint16_t>(*port);
    rest = {};
  }
  if (!rest.empty()) return fail("unexpected '" + std::string(rest) + "'");

  IpAddress network = Masked(*ip, prefix);
  std::string canonical = FormatIp(network) + "/" + std::to_string(prefix);
  if (network.bytes != ip->bytes) {
    return fail("host bits are set; did you mean " + canonical + "?");
  }
  rule.cidr = std::move(canonical);
  return rule;
}

std::string BuildIsolationRuleset(const IsolationPolicy& policy) {
  std::vector<std::string> v4;
  std::vector<std::string> v6;
  for (const std::string& address : policy.server_addresses) {
    (address.find(':') == std::string::npos ? v4 : v6).push_back(address);
  }
  for (auto* list : {&v4, &v6}) {
    std::sort(list->begin(), list->end());
    list->erase(std::unique(list->begin(), list->end()), list->end());
  }
  const bool selective = policy.type == IsolationType::kSelective;
  bool any_v6_peer = !v6.empty();
  if (selective) {
    for (const AllowRule& rule : policy.allow) any_v6_peer = any_v6_peer || rule.IsIpv6();
  }
  const std::string port = std::to_string(policy.server_port);

  std::string input = "    iif \"lo\" accept\n";
  std::string output = "    oif \"lo\" accept\n";
  if (!v4.empty()) {
    input += "    " + AddressMatch(false, "saddr", v4) + " tcp sport " + port + " accept\n";
    output += "    " + AddressMatch(false, "daddr", v4) + " tcp dport " + port + " accept\n";
  }
  if (!v6.empty()) {
    input += "    " + AddressMatch(true, "saddr", v6) + " tcp sport " + port + " accept\n";
    output += "    " + AddressMatch(true, "daddr", v6) + " tcp dport " + port + " accept\n";
  }
  if (any_v6_peer) {
    input += "    icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } "
             "ip6 hoplimit 255 accept\n";
    output += "    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } "
              "ip6 hoplimit 255 accept\n";
  }
  if (selective) {
    for (const AllowRule& rule : policy.allow) {
      const char* family = rule.IsIpv6() ? "ip6" : "ip";
      input += std::string("    ") + family + " saddr " + rule.cidr + TransportMatch(rule, "sport") +
               " accept\n";
      output += std::string("    ") + family + " daddr " + rule.cidr +
                TransportMatch(rule, "dport") + " accept\n";
    }
  }

  auto chain = [](const char* hook, const std::string& rules) {
    return std::string("  chain ") + hook + " {\n    type filter hook " + hook +
           " priority -300; policy drop;\n" + rules + "  }\n";
  };
  return std::string("table ") + kIsolationTableFamily + " " + kIsolationTableName + " {\n" +
         "  comment \"quell-agent network isolation (" +
         std::string(IsolationTypeName(policy.type)) + "); removed on release\"\n" +
         chain("input", input) + chain("forward", "") + chain("output", output) + "}\n";
}

}  // namespace quell::agent
