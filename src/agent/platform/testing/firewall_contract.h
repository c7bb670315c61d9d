// The behaviour every Firewall shares, run against each implementation (the fake in
// fake_firewall_test.cc, nftables as root in nftables_firewall_test.cc).
#pragma once

#include <gtest/gtest.h>

#include "agent/platform/firewall.h"

namespace quell::agent::test {

inline constexpr char kRulesetA[] =
    "table inet quell_probe {\n"
    "  chain output { type filter hook output priority 0; policy accept; ip daddr 192.0.2.1 drop; }\n"
    "}";
inline constexpr char kRulesetB[] =
    "table inet quell_probe {\n"
    "  chain output { type filter hook output priority 0; policy accept; ip daddr 192.0.2.2 drop; }\n"
    "}";

inline void ExpectFirewallContract(Firewall& firewall) {
  Result<std::optional<std::string>> absent = firewall.ReadTable("inet", "quell_probe");
  ASSERT_TRUE(absent.ok()) << absent.status().ToString();
  EXPECT_FALSE(absent->has_value());
  EXPECT_TRUE(firewall.DeleteTable("inet", "quell_probe").ok()) << "missing table is OK";

  Status replaced_a = firewall.ReplaceTable("inet", "quell_probe", kRulesetA);
  ASSERT_TRUE(replaced_a.ok()) << replaced_a.ToString();
  Result<std::optional<std::string>> first = firewall.ReadTable("inet", "quell_probe");
  Result<std::optional<std::string>> again = firewall.ReadTable("inet", "quell_probe");
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_NE(first->value().find("192.0.2.1"), std::string::npos);
  EXPECT_EQ(*first, *again) << "an untouched table reads the same";
  EXPECT_TRUE(*firewall.TableExists("inet", "quell_probe"));

  Status replaced_b = firewall.ReplaceTable("inet", "quell_probe", kRulesetB);
  ASSERT_TRUE(replaced_b.ok()) << replaced_b.ToString();
  Result<std::optional<std::string>> replaced = firewall.ReadTable("inet", "quell_probe");
  ASSERT_TRUE(replaced.ok() && replaced->has_value());
  EXPECT_EQ(replaced->value().find("192.0.2.1"), std::string::npos) << "old rules are gone";
  EXPECT_NE(replaced->value().find("192.0.2.2"), std::string::npos);

  ASSERT_TRUE(firewall.DeleteTable("inet", "quell_probe").ok());
  EXPECT_FALSE(*firewall.TableExists("inet", "quell_probe"));
}

}  // namespace quell::agent::test
