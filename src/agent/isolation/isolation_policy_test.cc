#include "agent/isolation/isolation_policy.h"

#include <gtest/gtest.h>

namespace quell::agent {
namespace {

AllowRule Rule(std::string_view text) {
  Result<AllowRule> rule = ParseAllowRule(text);
  EXPECT_TRUE(rule.ok()) << rule.status().ToString();
  return rule.ok() ? *rule : AllowRule{};
}

TEST(IsolationRulesetTest, FullIpv4AllowsOnlyLoopbackAndTheServerPort) {
  IsolationPolicy policy{.type = IsolationType::kFull,
                         .server_addresses = {"10.77.0.1"},
                         .server_port = 8444,
                         .allow = {Rule("192.0.2.0/24")}};  // ignored: not Selective
  EXPECT_EQ(BuildIsolationRuleset(policy),
            "table inet quell_isolation {\n"
            "  comment \"quell-agent network isolation (Full); removed on release\"\n"
            "  chain input {\n"
            "    type filter hook input priority -300; policy drop;\n"
            "    iif \"lo\" accept\n"
            "    ip saddr 10.77.0.1 tcp sport 8444 accept\n"
            "  }\n"
            "  chain forward {\n"
            "    type filter hook forward priority -300; policy drop;\n"
            "  }\n"
            "  chain output {\n"
            "    type filter hook output priority -300; policy drop;\n"
            "    oif \"lo\" accept\n"
            "    ip daddr 10.77.0.1 tcp dport 8444 accept\n"
            "  }\n"
            "}\n");
}

TEST(IsolationRulesetTest, ServerReachedOverIpv6AlsoAllowsOnLinkNeighbourDiscovery) {
  IsolationPolicy policy{.type = IsolationType::kFull,
                         .server_addresses = {"fd77::2", "10.77.0.1", "fd77::1", "fd77::2"},
                         .server_port = 443,
                         .allow = {}};
  const std::string ruleset = BuildIsolationRuleset(policy);
  EXPECT_NE(ruleset.find("    ip saddr 10.77.0.1 tcp sport 443 accept\n"
                         "    ip6 saddr { fd77::1, fd77::2 } tcp sport 443 accept\n"
                         "    icmpv6 type { nd-router-advert, nd-neighbor-solicit, "
                         "nd-neighbor-advert } ip6 hoplimit 255 accept\n"),
            std::string::npos)
      << ruleset;
  EXPECT_NE(ruleset.find("    ip6 daddr { fd77::1, fd77::2 } tcp dport 443 accept\n"
                         "    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, "
                         "nd-neighbor-advert } ip6 hoplimit 255 accept\n"),
            std::string::npos)
      << ruleset;
  EXPECT_EQ(ruleset.find("echo"), std::string::npos) << "ping stays blocked";
}

TEST(IsolationRulesetTest, Ipv4OnlyPolicyHasNoIcmpv6Exception) {
  IsolationPolicy policy{.type = IsolationType::kFull,
                         .server_addresses = {"10.77.0.1"},
                         .server_port = 443,
                         .allow = {}};
  EXPECT_EQ(BuildIsolationRuleset(policy).find("icmpv6"), std::string::npos);
}

TEST(IsolationRulesetTest, SelectiveAddsEachAllowRuleInBothDirections) {
  IsolationPolicy policy{
      .type = IsolationType::kSelective,
      .server_addresses = {"10.77.0.1"},
      .server_port = 8444,
      .allow = {Rule("10.77.0.12/32:22"), Rule("fd77::/64:443/tcp"), Rule("192.0.2.0/24"),
                Rule("10.0.0.53:53/udp"), Rule("198.51.100.0/24/tcp")}};
  EXPECT_EQ(BuildIsolationRuleset(policy),
            "table inet quell_isolation {\n"
            "  comment \"quell-agent network isolation (Selective); removed on release\"\n"
            "  chain input {\n"
            "    type filter hook input priority -300; policy drop;\n"
            "    iif \"lo\" accept\n"
            "    ip saddr 10.77.0.1 tcp sport 8444 accept\n"
            "    icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } "
            "ip6 hoplimit 255 accept\n"
            "    ip saddr 10.77.0.12/32 meta l4proto { tcp, udp } th sport 22 accept\n"
            "    ip6 saddr fd77::/64 tcp sport 443 accept\n"
            "    ip saddr 192.0.2.0/24 accept\n"
            "    ip saddr 10.0.0.53/32 udp sport 53 accept\n"
            "    ip saddr 198.51.100.0/24 meta l4proto tcp accept\n"
            "  }\n"
            "  chain forward {\n"
            "    type filter hook forward priority -300; policy drop;\n"
            "  }\n"
            "  chain output {\n"
            "    type filter hook output priority -300; policy drop;\n"
            "    oif \"lo\" accept\n"
            "    ip daddr 10.77.0.1 tcp dport 8444 accept\n"
            "    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } "
            "ip6 hoplimit 255 accept\n"
            "    ip daddr 10.77.0.12/32 meta l4proto { tcp, udp } th dport 22 accept\n"
            "    ip6 daddr fd77::/64 tcp dport 443 accept\n"
            "    ip daddr 192.0.2.0/24 accept\n"
            "    ip daddr 10.0.0.53/32 udp dport 53 accept\n"
            "    ip daddr 198.51.100.0/24 meta l4proto tcp accept\n"
            "  }\n"
            "}\n");
}

TEST(AllowRuleTest, ParsesEveryDocumentedForm) {
  struct Case {
    std::string_view text;
    AllowRule expected;
  };
  const Case cases[] = {
      {"10.77.0.12/32:22", {"10.77.0.12/32", 22, AllowProtocol::kAny}},
      {"fd77::/64:443/tcp", {"fd77::/64", 443, AllowProtocol::kTcp}},
      {"192.0.2.0/24", {"192.0.2.0/24", 0, AllowProtocol::kAny}},
      {"192.0.2.7", {"192.0.2.7/32", 0, AllowProtocol::kAny}},
      {"10.0.0.1:53/udp", {"10.0.0.1/32", 53, AllowProtocol::kUdp}},
      {"[fd77::1]:22", {"fd77::1/128", 22, AllowProtocol::kAny}},
      {"fd77:0::1", {"fd77::1/128", 0, AllowProtocol::kAny}},
      {"0.0.0.0/0/udp", {"0.0.0.0/0", 0, AllowProtocol::kUdp}},
  };
  for (const Case& c : cases) {
    Result<AllowRule> rule = ParseAllowRule(c.text);
    ASSERT_TRUE(rule.ok()) << c.text << ": " << rule.status().ToString();
    EXPECT_EQ(*rule, c.expected) << c.text;
    Result<AllowRule> again = ParseAllowRule(rule->ToString());
    ASSERT_TRUE(again.ok()) << rule->ToString();
    EXPECT_EQ(*again, *rule) << "ToString round-trips: " << rule->ToString();
  }
}

TEST(AllowRuleTest, RejectsBadInputWithAnExplanation) {
  struct Case {
    std::string_view text;
    std::string_view says;
  };
  const Case cases[] = {
      {"", "empty"},
      {"example.com:22", "is not an IPv4 or IPv6 address"},
      {"10.0.0.256", "is not an IPv4 or IPv6 address"},
      {"10.0.0.0/33", "prefix length must be 0-32"},
      {"fd00::/129", "prefix length must be 0-128"},
      {"10.0.0.0/:22", "prefix length"},
      {"10.0.0.1:0", "port must be 1-65535"},
      {"10.0.0.1:65536", "port must be 1-65535"},
      {"10.0.0.1:ssh", "port must be 1-65535"},
      {"10.0.0.1:22/icmp", "unknown protocol 'icmp'"},
      {"10.77.0.12/24", "host bits are set; did you mean 10.77.0.0/24?"},
      {"fd77::1:22:99999", "IPv6 address with a port needs brackets"},
      {"[fd77::1:22", "missing ']'"},
      {"10.0.0.1/32x", "prefix length"},
  };
  for (const Case& c : cases) {
    Result<AllowRule> rule = ParseAllowRule(c.text);
    ASSERT_FALSE(rule.ok()) << "accepted '" << c.text << "'";
    EXPECT_EQ(rule.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(rule.status().message().find(c.says), std::string::npos)
        << c.text << " -> " << rule.status().message();
    EXPECT_NE(rule.status().message().find("'" + std::string(c.text) + "'"), std::string::npos)
        << "names the input: " << rule.status().message();
  }
}

TEST(IsolationTypeTest, NamesRoundTripAndUnknownNamesAreRejected) {
  for (IsolationType type : {IsolationType::kNone, IsolationType::kFull, IsolationType::kSelective}) {
    EXPECT_EQ(*ParseIsolationType(IsolationTypeName(type)), type);
  }
  EXPECT_EQ(ParseIsolationType("full").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseIsolationType("UnManagedDevice").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quell::agent
