#include "agent/platform/fake_firewall.h"

#include <gtest/gtest.h>

#include "agent/platform/testing/firewall_contract.h"

namespace quell::agent {
namespace {

TEST(FakeFirewallTest, HonoursTheFirewallContract) {
  FakeFirewall firewall;
  test::ExpectFirewallContract(firewall);
}

TEST(FakeFirewallTest, InjectedFailureHitsOnlyTheNextCallAndChangesNothing) {
  FakeFirewall firewall;
  ASSERT_TRUE(firewall.ReplaceTable("inet", "t", "A").ok());
  firewall.FailNextCall(PermissionDenied("EPERM"));
  Status failed = firewall.ReplaceTable("inet", "t", "B");
  EXPECT_EQ(failed.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(firewall.Table("inet", "t"), "A");
  EXPECT_TRUE(firewall.ReplaceTable("inet", "t", "B").ok());
  EXPECT_EQ(firewall.Table("inet", "t"), "B");
}

TEST(FakeFirewallTest, LoseAndTamperActBehindTheOwnersBack) {
  FakeFirewall firewall;
  ASSERT_TRUE(firewall.ReplaceTable("inet", "t", "A").ok());
  firewall.TamperTable("inet", "t", "X");
  EXPECT_EQ(firewall.ReadTable("inet", "t")->value(), "X");
  firewall.LoseTable("inet", "t");
  EXPECT_FALSE(firewall.ReadTable("inet", "t")->has_value());
}

}  // namespace
}  // namespace quell::agent
