// FakeFirewall: an in-memory Firewall for tests. Tables are stored verbatim (ReadTable
// returns exactly what ReplaceTable got); faults and tampering are injected on command.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "agent/platform/firewall.h"

namespace quell::agent {

class FakeFirewall final : public Firewall {
 public:
  Status ReplaceTable(const std::string& family, const std::string& name,
                      const std::string& ruleset) override;
  Status DeleteTable(const std::string& family, const std::string& name) override;
  Result<std::optional<std::string>> ReadTable(const std::string& family,
                                               const std::string& name) override;

  // The next call of any method fails with `status` and changes nothing.
  void FailNextCall(Status status);
  // Removes a table behind the owner's back, as an administrator running `nft delete` would.
  void LoseTable(const std::string& family, const std::string& name);
  // Overwrites a table's content behind the owner's back.
  void TamperTable(const std::string& family, const std::string& name, std::string ruleset);

  // The table's current text, or nullopt.
  std::optional<std::string> Table(const std::string& family, const std::string& name) const;
  int replace_calls() const;

 private:
  using Key = std::pair<std::string, std::string>;
  Status TakeInjectedFailure();  // REQUIRES: mutex_ held

  mutable std::mutex mutex_;
  std::map<Key, std::string> tables_;
  std::optional<Status> next_failure_;
  int replace_calls_ = 0;
};

}  // namespace quell::agent
