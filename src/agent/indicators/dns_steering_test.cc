#include "agent/indicators/dns_steering.h"

#include <gtest/gtest.h>

namespace quell::agent {
namespace {

TEST(DnsSteeringTest, ScriptRedirectsPort53ExceptTheFiltersOwnQueries) {
  const std::string script = DnsSteeringScript("quell_dns", {.port = 40053, .v6 = true});
  EXPECT_EQ(script,
            "add table inet quell_dns { flags owner; }\n"
            "delete table inet quell_dns\n"
            "table inet quell_dns {\n"
            "  flags owner;\n"
            "  chain output {\n"
            "    type nat hook output priority -100; policy accept;\n"
            "    meta mark 0x51d5 return\n"
            "    meta nfproto ipv4 udp dport 53 redirect to :40053\n"
            "    meta nfproto ipv4 tcp dport 53 redirect to :40053\n"
            "    meta nfproto ipv6 udp dport 53 redirect to :40053\n"
            "    meta nfproto ipv6 tcp dport 53 redirect to :40053\n"
            "  }\n"
            "}\n");
}

TEST(DnsSteeringTest, ScriptVariants) {
  const std::string v4 = DnsSteeringScript("t", {.port = 5, .v6 = false});
  EXPECT_EQ(v4.find("ipv6"), std::string::npos);
  EXPECT_NE(v4.find("meta nfproto ipv4 tcp dport 53 redirect to :5\n"), std::string::npos);

  const std::string stub =
      DnsSteeringScript("t", {.port = 5, .v6 = true, .mark = 7, .exempt_uids = {101, 990}});
  EXPECT_NE(stub.find("    meta mark 0x7 return\n    meta skuid { 101, 990 } return\n"),
            std::string::npos);

  const std::string local = DnsSteeringScript("t", {.port = 5, .v6 = true, .loopback_only = true});
  // The exemptions come before the redirects (first match wins in a chain).
  const size_t ret4 = local.find("ip daddr != 127.0.0.0/8 return");
  const size_t ret6 = local.find("ip6 daddr != ::1 return");
  ASSERT_NE(ret4, std::string::npos);
  ASSERT_NE(ret6, std::string::npos);
  EXPECT_LT(ret4, local.find("redirect"));
  EXPECT_LT(ret6, local.find("redirect"));
}

TEST(DnsSteeringTest, ListenerUidsFromProcNetUdp) {
  const std::string udp =
      "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode ref pointer drops\n"
      "  481: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101 "
      "       0 20374 2 0000000000000000 0\n"
      "  900: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0 "
      "       0 1 2 0 0\n"
      "garbage\n";
  EXPECT_EQ(DnsListenerUids(udp), (std::set<uint32_t>{101}));
  const std::string udp6 =
      "  sl  local_address                         remote_address                        st "
      "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
      "   1: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 "
      "00000000:00000000 00:00000000 00000000     0        0 1 2 0 0\n";
  EXPECT_EQ(DnsListenerUids(udp6), (std::set<uint32_t>{0}));
  EXPECT_TRUE(DnsListenerUids("").empty());
}

TEST(DnsSteeringTest, PlanFollowsTheLocalStub) {
  // Remote nameservers: everything is steered, nothing exempt.
  DnsSteeringPlan remote = PlanDnsSteering(99, true, {"10.0.0.53"}, {0, 101});
  EXPECT_TRUE(remote.exempt_uids.empty());
  EXPECT_FALSE(remote.loopback_only);
  EXPECT_EQ(remote.port, 99);
  // A stub on 127.0.0.53 running as its own user: its queries are exempt by uid.
  DnsSteeringPlan stub = PlanDnsSteering(99, true, {"127.0.0.53"}, {101});
  EXPECT_EQ(stub.exempt_uids, (std::set<uint32_t>{101}));
  EXPECT_FALSE(stub.loopback_only);
  // A stub running as root: only queries to loopback resolvers are steered.
  DnsSteeringPlan root = PlanDnsSteering(99, false, {"::1"}, {0});
  EXPECT_TRUE(root.loopback_only);
  EXPECT_TRUE(root.exempt_uids.empty());
  EXPECT_FALSE(root.v6);
  // Loopback nameserver but nothing listening: no stub to exempt.
  EXPECT_EQ(PlanDnsSteering(99, true, {"127.0.0.1"}, {}), (DnsSteeringPlan{.port = 99}));
}

TEST(DnsSteeringTest, InstallsOnceAndRemoves) {
  FakeNftRunner nft;
  DnsSteering steering(nft);
  ASSERT_TRUE(steering.Install({.port = 1234}).ok());
  ASSERT_TRUE(steering.Install({.port = 1234}).ok());  // unchanged: nothing run
  ASSERT_EQ(nft.Scripts().size(), 1u);
  EXPECT_NE(nft.Scripts()[0].find("redirect to :1234"), std::string::npos);
  ASSERT_TRUE(steering.Install({.port = 1235}).ok());
  EXPECT_EQ(nft.Scripts().size(), 2u);
  ASSERT_TRUE(steering.Remove().ok());
  EXPECT_EQ(nft.Scripts().back(),
            "add table inet quell_dns { flags owner; }\ndelete table inet quell_dns\n");
  EXPECT_FALSE(steering.Installed().has_value());
  ASSERT_TRUE(steering.Remove().ok());  // not installed by us: a leftover without an owner
  EXPECT_EQ(nft.Scripts().back(), "add table inet quell_dns\ndelete table inet quell_dns\n");

  nft.QueueReply(Internal("nft: boom"));
  EXPECT_FALSE(steering.Install({.port = 1}).ok());
  EXPECT_FALSE(steering.Installed().has_value()) << "a failed install is retried";
}

}  // namespace
}  // namespace quell::agent
