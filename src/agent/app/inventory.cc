#include "agent/app/inventory.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>

#include "common/files.h"

namespace quell::agent {

namespace {

std::string Unquote(std::string_view value) {
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front()) {
    const bool escapes = value.front() == '"';
    value = value.substr(1, value.size() - 2);
    std::string out;
    for (size_t i = 0; i < value.size(); ++i) {
      if (escapes && value[i] == '\\' && i + 1 < value.size()) ++i;
      out += value[i];
    }
    return out;
  }
  return std::string(value);
}

bool IsIpv4(const std::string& a) { return a.find(':') == std::string::npos; }

}  // namespace

OsRelease ParseOsRelease(std::string_view text) {
  OsRelease out;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = line.substr(0, eq);
    if (key == "ID") out.id = Unquote(line.substr(eq + 1));
    if (key == "PRETTY_NAME") out.pretty_name = Unquote(line.substr(eq + 1));
  }
  return out;
}

std::vector<std::string> OrderAddresses(const std::vector<std::string>& addresses) {
  std::vector<std::string> out;
  for (const auto& a : addresses) {
    if (a.empty() || a == "::1" || a.starts_with("127.")) continue;
    if (!IsIpv4(a) && (a.starts_with("fe8") || a.starts_with("fe9") || a.starts_with("fea") ||
                       a.starts_with("feb"))) {
      continue;  // fe80::/10 is link-local: not an address anyone else can use to find us
    }
    out.push_back(a);
  }
  std::stable_partition(out.begin(), out.end(), IsIpv4);
  return out;
}

quell::v1::Inventory CollectInventory(const std::string& computer_name) {
  quell::v1::Inventory inv;
  inv.set_os_platform("Linux");
  inv.set_agent_version(QUELL_VERSION);
  if (!computer_name.empty()) {
    inv.set_hostname(computer_name);
  } else {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0) inv.set_hostname(name);
  }
  auto os_release = ReadFile("/etc/os-release");
  if (!os_release.ok()) os_release = ReadFile("/usr/lib/os-release");
  if (os_release.ok()) {
    OsRelease parsed = ParseOsRelease(*os_release);
    inv.set_os_id(parsed.id);
    inv.set_os_version(parsed.pretty_name);
  }
  struct utsname uts {};
  if (::uname(&uts) == 0) {
    inv.set_kernel_version(uts.release);
    inv.set_architecture(uts.machine);
  }
  std::vector<std::string> addresses;
  struct ifaddrs* list = nullptr;
  if (::getifaddrs(&list) == 0) {
    for (auto* i = list; i != nullptr; i = i->ifa_next) {
      if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
      char text[INET6_ADDRSTRLEN] = {};
      if (i->ifa_addr->sa_family == AF_INET) {
        auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
        ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
      } else {
        continue;
      }
      addresses.emplace_back(text);
    }
    ::freeifaddrs(list);
  }
  for (auto& a : OrderAddresses(addresses)) inv.add_ip_addresses(std::move(a));
  return inv;
}

}  // namespace quell::agent
