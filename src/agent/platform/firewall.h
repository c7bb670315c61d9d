// Firewall: the agent's narrow view of the kernel packet filter (nftables), so that
// enforcement logic is unit-tested with FakeFirewall and the real thing in namespace labs.
//
// A Firewall acts on the network namespace it was created in and on whole tables only: an
// enforcement owns one table and replaces it atomically, never edits rules in place.
// Implementations are thread-safe.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"

namespace quell::agent {

class Firewall {
 public:
  virtual ~Firewall() = default;

  // Atomically replaces table `family name` with `ruleset`, a complete nft-syntax definition
  // ("table inet quell_isolation { ... }"). Either the whole new table is in force afterwards
  // or the previous one (or none) still is. Errors carry the packet filter's own message.
  virtual Status ReplaceTable(const std::string& family, const std::string& name,
                              const std::string& ruleset) = 0;

  // Removes the table; a missing table is not an error.
  virtual Status DeleteTable(const std::string& family, const std::string& name) = 0;

  // The table as the packet filter prints it now, or nullopt when it does not exist. Two
  // reads of an untouched table return the same text, so comparing a read with one taken
  // right after ReplaceTable detects tampering. The text is not the input to ReplaceTable:
  // the kernel's listing is normalised (e.g. "priority raw" for -300).
  virtual Result<std::optional<std::string>> ReadTable(const std::string& family,
                                                       const std::string& name) = 0;

  Result<bool> TableExists(const std::string& family, const std::string& name) {
    QUELL_ASSIGN_OR_RETURN(std::optional<std::string> table, ReadTable(family, name));
    return table.has_value();
  }
};

}  // namespace quell::agent
