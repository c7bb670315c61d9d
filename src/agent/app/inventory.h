// What the agent tells the server about its host (Hello, EnrollRequest).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "quell/v1/agent.pb.h"

namespace quell::agent {

struct OsRelease {
  std::string id;           // ID, e.g. "debian"
  std::string pretty_name;  // PRETTY_NAME, e.g. "Debian GNU/Linux 12 (bookworm)"
};

// Parses os-release(5) text: KEY=value lines, values optionally quoted, with backslash escapes
// inside double quotes. Pure.
OsRelease ParseOsRelease(std::string_view text);

// Orders addresses most useful first: IPv4, then global IPv6; drops loopback and IPv6
// link-local addresses. Pure; keeps the relative order within each group.
std::vector<std::string> OrderAddresses(const std::vector<std::string>& addresses);

// Gathers the inventory of this host. `computer_name` overrides the host name when not empty.
// Never fails: what cannot be read is left empty.
quell::v1::Inventory CollectInventory(const std::string& computer_name);

}  // namespace quell::agent
