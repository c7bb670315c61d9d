// Privileged: runs the real nftables inside throw-away network namespaces only.
#include "agent/platform/nftables_firewall.h"

#include <gtest/gtest.h>

#include "agent/platform/testing/firewall_contract.h"
#include "agent/platform/testing/netns_sandbox.h"

namespace quell::agent {
namespace {

using test::kRulesetA;

class NftablesFirewallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::IsRoot()) GTEST_SKIP() << "needs root (nftables in a new network namespace)";
  }
};

TEST_F(NftablesFirewallTest, HonoursTheFirewallContract) {
  Status ran = test::RunInNewNetns([] {
    Result<std::unique_ptr<NftablesFirewall>> firewall = NftablesFirewall::Create();
    ASSERT_TRUE(firewall.ok()) << firewall.status().ToString();
    test::ExpectFirewallContract(**firewall);
  });
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

TEST_F(NftablesFirewallTest, RejectedRulesetKeepsThePreviousTableAndCarriesNftsError) {
  Status ran = test::RunInNewNetns([] {
    auto firewall = std::move(NftablesFirewall::Create()).value();
    ASSERT_TRUE(firewall->ReplaceTable("inet", "quell_probe", kRulesetA).ok());
    std::optional<std::string> before = *firewall->ReadTable("inet", "quell_probe");

    Status bad = firewall->ReplaceTable(
        "inet", "quell_probe",
        "table inet quell_probe { chain output { type filter hook output priority 0; "
        "ip daddr 192.0.2.999 drop; } }");
    EXPECT_FALSE(bad.ok());
    EXPECT_NE(bad.message().find("192.0.2.999"), std::string::npos) << bad.ToString();
    EXPECT_EQ(*firewall->ReadTable("inet", "quell_probe"), before) << "transaction rolled back";
  });
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

TEST_F(NftablesFirewallTest, RefusesTableIdentifiersThatCouldInjectCommands) {
  Status ran = test::RunInNewNetns([] {
    auto firewall = std::move(NftablesFirewall::Create()).value();
    EXPECT_EQ(firewall->DeleteTable("inet", "x; flush ruleset").code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(firewall->DeleteTable("inet6", "x").code(), StatusCode::kInvalidArgument);
  });
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

}  // namespace
}  // namespace quell::agent
