#include "agent/indicators/dns_steering.h"

#include <arpa/inet.h>

#include <charconv>

#include "common/logging.h"

namespace quell::agent {
namespace {

auto Log() { return Logger("agent.dns"); }

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool IsLoopback(const std::string& address) {
  in_addr a4{};
  if (inet_pton(AF_INET, address.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  const std::string bare = address.substr(0, address.find('%'));
  in6_addr a6{};
  if (inet_pton(AF_INET6, bare.c_str(), &a6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

}  // namespace

std::string DnsSteeringScript(std::string_view table, const DnsSteeringPlan& plan) {
  const std::string t = "inet " + std::string(table);
  const std::string port = std::to_string(plan.port);
  char mark[16];
  std::snprintf(mark, sizeof mark, "0x%x", plan.mark);
  std::string chain =
      "  chain output {\n"
      "    type nat hook output priority -100; policy accept;\n"
      "    meta mark " + std::string(mark) + " return\n";
  if (!plan.exempt_uids.empty()) {
    std::string uids;
    for (uint32_t uid : plan.exempt_uids) uids += (uids.empty() ? "" : ", ") + std::to_string(uid);
    chain += "    meta skuid { " + uids + " } return\n";
  }
  if (plan.loopback_only) {
    chain += "    ip daddr != 127.0.0.0/8 return\n";
    chain += "    ip6 daddr != ::1 return\n";
  }
  chain += "    meta nfproto ipv4 udp dport 53 redirect to :" + port + "\n";
  chain += "    meta nfproto ipv4 tcp dport 53 redirect to :" + port + "\n";
  if (plan.v6) {
    chain += "    meta nfproto ipv6 udp dport 53 redirect to :" + port + "\n";
    chain += "    meta nfproto ipv6 tcp dport 53 redirect to :" + port + "\n";
  }
  chain += "  }\n";
  // `flags owner`: the table belongs to the agent's netlink socket, so the kernel removes it
  // when the agent's process ends in any way (crash, SIGKILL): DNS never stays steered to a
  // filter that is gone. Every mention of the table carries the flag (the kernel refuses a
  // change of ownership).
  return "add table " + t + " { flags owner; }\ndelete table " + t + "\ntable " + t +
         " {\n  flags owner;\n" + chain + "}\n";
}

std::set<uint32_t> DnsListenerUids(std::string_view text) {
  std::set<uint32_t> uids;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    const std::vector<std::string_view> f = Fields(text.substr(start, nl - start));
    start = nl + 1;
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
    if (f.size() < 8 || f[0] == "sl") continue;
    const size_t colon = f[1].rfind(':');
    if (colon == std::string_view::npos) continue;
    unsigned port = 0, uid = 0;
    const std::string_view p = f[1].substr(colon + 1);
    if (std::from_chars(p.data(), p.data() + p.size(), port, 16).ec != std::errc() || port != 53) {
      continue;
    }
    if (std::from_chars(f[7].data(), f[7].data() + f[7].size(), uid).ec != std::errc()) continue;
    uids.insert(uid);
  }
  return uids;
}

DnsSteeringPlan PlanDnsSteering(uint16_t port, bool v6, const std::vector<std::string>& nameservers,
                                const std::set<uint32_t>& listener_uids) {
  DnsSteeringPlan plan{.port = port, .v6 = v6};
  bool loopback = false;
  for (const std::string& ns : nameservers) loopback = loopback || IsLoopback(ns);
  if (!loopback || listener_uids.empty()) return plan;
  if (listener_uids.contains(0)) {
    plan.loopback_only = true;
  } else {
    plan.exempt_uids = listener_uids;
  }
  return plan;
}

DnsSteering::DnsSteering(NftRunner& nft, std::string table) : nft_(nft), table_(std::move(table)) {}

Status DnsSteering::Install(const DnsSteeringPlan& plan) {
  std::lock_guard lock(mutex_);
  if (installed_ && *installed_ == plan) return Status::Ok();
  QUELL_RETURN_IF_ERROR(
      nft_.Run(DnsSteeringScript(table_, plan), false).status().WithContext("DNS steering"));
  if (plan.loopback_only) {
    Log()->warn("DNS filter: the local resolver runs as root, so only queries to loopback "
                "resolvers are steered to the filter; programs querying remote servers directly "
                "are not filtered");
  }
  Log()->info("DNS filter: table inet {} steers port 53 to {}{}", table_, plan.port,
              plan.v6 ? " (IPv4 and IPv6)" : " (IPv4 only)");
  installed_ = plan;
  return Status::Ok();
}

Status DnsSteering::Remove() {
  std::lock_guard lock(mutex_);
  const std::string t = "table inet " + table_;
  if (installed_) {
    QUELL_RETURN_IF_ERROR(
        nft_.Run("add " + t + " { flags owner; }\ndelete " + t + "\n", false).status());
  } else {
    // Not ours: a table without an owner left by an agent version before the owner flag.
    // (A table owned by another live process is refused by the kernel and stays.)
    QUELL_RETURN_IF_ERROR(nft_.Run("add " + t + "\ndelete " + t + "\n", false).status());
  }
  if (installed_) Log()->info("DNS filter: table inet {} removed", table_);
  installed_.reset();
  return Status::Ok();
}

std::optional<DnsSteeringPlan> DnsSteering::Installed() const {
  std::lock_guard lock(mutex_);
  return installed_;
}

}  // namespace quell::agent
