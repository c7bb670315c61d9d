// Privileged: proves the kernel's nftables accepts every shape of generated ruleset and
// keeps it at top priority with policy drop. Runs in a throw-away network namespace.
#include <gtest/gtest.h>

#include "agent/isolation/isolation_policy.h"
#include "agent/platform/nftables_firewall.h"
#include "agent/platform/testing/netns_sandbox.h"

namespace quell::agent {
namespace {

TEST(IsolationRulesetNftablesTest, KernelAcceptsFullAndSelectiveRulesetsForIpv4AndIpv6) {
  if (!test::IsRoot()) GTEST_SKIP() << "needs root (nftables in a new network namespace)";
  std::vector<AllowRule> allow;
  for (const char* text : {"10.77.0.12/32:22", "fd77::/64:443/tcp", "192.0.2.0/24",
                           "10.0.0.53:53/udp", "198.51.100.0/24/tcp", "[fd77::9]:8080/any"}) {
    allow.push_back(*ParseAllowRule(text));
  }
  const std::vector<IsolationPolicy> policies = {
      {IsolationType::kFull, {"10.77.0.1"}, 8444, {}},
      {IsolationType::kFull, {"fd77::1"}, 8444, {}},
      {IsolationType::kFull, {"10.77.0.1", "10.77.0.2", "fd77::1", "fd77::2"}, 443, {}},
      {IsolationType::kSelective, {"10.77.0.1"}, 8444, allow},
      {IsolationType::kSelective, {"10.77.0.1", "fd77::1"}, 8444, allow},
  };
  Status ran = test::RunInNewNetns([&] {
    auto firewall = std::move(NftablesFirewall::Create()).value();
    for (const IsolationPolicy& policy : policies) {
      const std::string ruleset = BuildIsolationRuleset(policy);
      Status applied = firewall->ReplaceTable(kIsolationTableFamily, kIsolationTableName, ruleset);
      ASSERT_TRUE(applied.ok()) << applied.ToString() << "\n" << ruleset;
      std::optional<std::string> listing =
          *firewall->ReadTable(kIsolationTableFamily, kIsolationTableName);
      ASSERT_TRUE(listing.has_value());
      EXPECT_NE(listing->find("type filter hook input priority raw; policy drop;"),
                std::string::npos)
          << *listing;
      EXPECT_NE(listing->find("type filter hook output priority raw; policy drop;"),
                std::string::npos);
      EXPECT_NE(listing->find("type filter hook forward priority raw; policy drop;"),
                std::string::npos);
    }
  });
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

}  // namespace
}  // namespace quell::agent
