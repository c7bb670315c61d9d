#include "agent/indicators/indicator_set.h"

#include <gtest/gtest.h>

namespace quell::agent {
namespace {

constexpr char kSha256[] = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
constexpr char kSha1[] = "3395856ce81f2b7382dee72602f798b642f14140";
constexpr char kMd5[] = "44d88612fea8a8f36de82e1278abb02f";

quell::v1::Indicator Ind(std::string id, std::string type, std::string value,
                         std::string action = "Block", int64_t expires = 0) {
  quell::v1::Indicator i;
  i.set_id(std::move(id));
  i.set_type(std::move(type));
  i.set_value(std::move(value));
  i.set_action(std::move(action));
  i.set_severity("High");
  i.set_title("title of " + i.id());
  i.set_generate_alert(true);
  i.set_expiration_unix_ms(expires);
  return i;
}

class IndicatorSetTest : public ::testing::Test {
 protected:
  FakeClock clock_{1'700'000'000'000};
  IndicatorSet set_{clock_};
};

TEST_F(IndicatorSetTest, HashesMatchByTheirOwnTypeCaseInsensitively) {
  ASSERT_TRUE(set_.Upsert(Ind("1", "FileSha256", kSha256)).ok());
  ASSERT_TRUE(set_.Upsert(Ind("2", "FileSha1", kSha1, "Audit")).ok());
  ASSERT_TRUE(set_.Upsert(Ind("3", "FileMd5", kMd5, "Allowed")).ok());

  auto m = set_.MatchFile(std::string(kSha256), "", "");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, "1");
  EXPECT_EQ(m->value, kSha256);
  EXPECT_EQ(m->action, IndicatorAction::kBlock);
  EXPECT_EQ(m->title, "title of 1");
  EXPECT_EQ(m->severity, "High");
  EXPECT_TRUE(m->generate_alert);

  std::string upper = kSha1;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  EXPECT_EQ(set_.MatchFile("", upper, "")->id, "2");
  EXPECT_EQ(set_.MatchFile("", "", kMd5)->id, "3");
  // A SHA-1 value is not a SHA-256 and a different hash does not match.
  EXPECT_FALSE(set_.MatchFile(std::string(64, 'a'), std::string(40, 'b'), std::string(32, 'c')));
  // The longer hash decides when several of a file's digests match.
  EXPECT_EQ(set_.MatchFile(kSha256, kSha1, kMd5)->id, "1");
}

TEST_F(IndicatorSetTest, RejectsMalformedValuesAndLeavesTheSetUnchanged) {
  EXPECT_FALSE(set_.Upsert(Ind("1", "FileSha256", "abc")).ok());
  EXPECT_FALSE(set_.Upsert(Ind("2", "FileSha1", std::string(40, 'z'))).ok());
  EXPECT_FALSE(set_.Upsert(Ind("3", "IpAddress", "300.1.1.1")).ok());
  EXPECT_FALSE(set_.Upsert(Ind("4", "IpAddress", "10.0.0.0/33")).ok());
  EXPECT_FALSE(set_.Upsert(Ind("5", "DomainName", "bad..name")).ok());
  EXPECT_FALSE(set_.Upsert(Ind("6", "Teapot", "x")).ok());
  EXPECT_FALSE(set_.Upsert(Ind("7", "DomainName", "ok.com", "Explode")).ok());
  EXPECT_EQ(set_.size(), 0u);
}

TEST_F(IndicatorSetTest, IpAddressesAndCidrRangesLongestPrefixFirst) {
  ASSERT_TRUE(set_.Upsert(Ind("net8", "IpAddress", "10.0.0.0/8")).ok());
  ASSERT_TRUE(set_.Upsert(Ind("net24", "IpAddress", "10.1.2.0/24", "Audit")).ok());
  ASSERT_TRUE(set_.Upsert(Ind("host", "IpAddress", "10.1.2.3", "Allowed")).ok());
  ASSERT_TRUE(set_.Upsert(Ind("v6", "IpAddress", "2001:DB8::/32")).ok());
  ASSERT_TRUE(set_.Upsert(Ind("loose", "IpAddress", "192.168.7.9/16")).ok());

  EXPECT_EQ(set_.MatchIp("10.1.2.3")->id, "host");
  EXPECT_EQ(set_.MatchIp("10.1.2.4")->id, "net24");
  EXPECT_EQ(set_.MatchIp("10.200.0.1")->id, "net8");
  EXPECT_EQ(set_.MatchIp("::ffff:10.200.0.1")->id, "net8");
  EXPECT_FALSE(set_.MatchIp("11.0.0.1"));
  EXPECT_EQ(set_.MatchIp("2001:db8:ffff::1")->id, "v6");
  EXPECT_FALSE(set_.MatchIp("2001:db9::1"));
  EXPECT_FALSE(set_.MatchIp("not an ip"));
  // Host bits are cleared, as nft would.
  EXPECT_EQ(set_.FindById("loose")->value, "192.168.0.0/16");
  EXPECT_EQ(set_.MatchIp("192.168.200.1")->id, "loose");
  EXPECT_EQ(set_.FindById("host")->value, "10.1.2.3");
  EXPECT_EQ(set_.FindById("v6")->value, "2001:db8::/32");
  EXPECT_EQ(set_.FindIpRange("10.1.2.0/24")->id, "net24");
  EXPECT_EQ(set_.FindIpRange("10.1.2.3/32")->id, "host");
  EXPECT_FALSE(set_.FindIpRange("10.1.0.0/16"));

  // Allowed on the same range wins over Block, and the range is not enforced.
  auto ranges = set_.BlockedIpRanges();
  std::vector<std::string> cidrs;
  for (auto& r : ranges) cidrs.push_back(r.cidr);
  EXPECT_EQ(cidrs, (std::vector<std::string>{"10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"}));
  ASSERT_TRUE(set_.Upsert(Ind("allow8", "IpAddress", "10.0.0.0/8", "Allowed")).ok());
  EXPECT_EQ(set_.MatchIp("10.200.0.1")->action, IndicatorAction::kAllowed);
  EXPECT_EQ(set_.BlockedIpRanges().size(), 2u);
}

TEST_F(IndicatorSetTest, DomainsMatchTheirSubdomainsAndUrlsActOnTheirHost) {
  ASSERT_TRUE(set_.Upsert(Ind("d", "DomainName", "Example.COM.")).ok());
  ASSERT_TRUE(set_.Upsert(Ind("u", "Url", "https://User@Evil.Test:8443/path/x?q=1", "Audit")).ok());
  ASSERT_TRUE(set_.Upsert(Ind("deeper", "DomainName", "safe.example.com", "Allowed")).ok());

  EXPECT_EQ(set_.MatchDomain("example.com")->id, "d");
  EXPECT_EQ(set_.MatchDomain("a.b.example.com.")->id, "d");
  EXPECT_EQ(set_.MatchDomain("x.safe.example.com")->id, "deeper");  // most specific wins
  EXPECT_FALSE(set_.MatchDomain("notexample.com"));
  EXPECT_FALSE(set_.MatchDomain("com"));
  auto u = set_.MatchDomain("cdn.evil.test");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->id, "u");
  EXPECT_EQ(u->type, IndicatorType::kUrl);
  EXPECT_EQ(u->value, "https://User@Evil.Test:8443/path/x?q=1");  // kept as sent
  EXPECT_EQ(*UrlHost("http://[2001:db8::1]:80/x"), "2001:db8::1");
  EXPECT_EQ(*UrlHost("bare.example.org/path"), "bare.example.org");
  EXPECT_FALSE(UrlHost("https:///nohost").ok());
}

TEST_F(IndicatorSetTest, UpsertReplacesByIdAndRemoveForgets) {
  ASSERT_TRUE(set_.Upsert(Ind("1", "DomainName", "one.test")).ok());
  ASSERT_TRUE(set_.Upsert(Ind("1", "DomainName", "two.test")).ok());
  EXPECT_EQ(set_.size(), 1u);
  EXPECT_FALSE(set_.MatchDomain("one.test"));
  EXPECT_EQ(set_.MatchDomain("two.test")->id, "1");
  EXPECT_TRUE(set_.Remove("1"));
  EXPECT_FALSE(set_.Remove("1"));
  EXPECT_FALSE(set_.MatchDomain("two.test"));
  EXPECT_EQ(set_.size(), 0u);
}

TEST_F(IndicatorSetTest, TwoIndicatorsWithOneValueAllowWinsAndRemovingOneKeepsTheOther) {
  ASSERT_TRUE(set_.Upsert(Ind("block", "FileSha256", kSha256, "Block")).ok());
  ASSERT_TRUE(set_.Upsert(Ind("allow", "FileSha256", kSha256, "Allowed")).ok());
  EXPECT_EQ(set_.MatchFile(kSha256, "", "")->id, "allow");
  ASSERT_TRUE(set_.Remove("allow"));
  EXPECT_EQ(set_.MatchFile(kSha256, "", "")->id, "block");
  EXPECT_EQ(set_.CountFileBlocks(), 1u);
}

TEST_F(IndicatorSetTest, ExpiredIndicatorsStopApplyingByThemselves) {
  const UnixMillis now = clock_.Now();
  ASSERT_TRUE(set_.Upsert(Ind("soon", "FileSha256", kSha256, "Block", now + 60'000)).ok());
  ASSERT_TRUE(set_.Upsert(Ind("ip", "IpAddress", "203.0.113.0/24", "Block", now + 120'000)).ok());
  ASSERT_TRUE(set_.Upsert(Ind("dns", "DomainName", "evil.test", "Block", now + 60'000)).ok());
  ASSERT_TRUE(set_.Upsert(Ind("forever", "DomainName", "bad.test")).ok());
  EXPECT_TRUE(set_.MatchFile(kSha256, "", ""));
  EXPECT_EQ(set_.CountFileBlocks(), 1u);
  EXPECT_EQ(set_.NextExpiry(), now + 60'000);

  clock_.Advance(60'000);
  EXPECT_FALSE(set_.MatchFile(kSha256, "", ""));
  EXPECT_FALSE(set_.MatchDomain("www.evil.test"));
  EXPECT_TRUE(set_.MatchIp("203.0.113.5"));
  EXPECT_EQ(set_.CountFileBlocks(), 0u);
  EXPECT_EQ(set_.BlockedIpRanges().size(), 1u);
  EXPECT_EQ(set_.NextExpiry(), now + 120'000);

  clock_.Advance(60'000);
  EXPECT_FALSE(set_.MatchIp("203.0.113.5"));
  EXPECT_TRUE(set_.BlockedIpRanges().empty());
  EXPECT_EQ(set_.size(), 4u);
  EXPECT_EQ(set_.Purge(), 3u);
  EXPECT_EQ(set_.size(), 1u);
  EXPECT_TRUE(set_.MatchDomain("bad.test"));
  EXPECT_EQ(set_.NextExpiry(), 0);
}

TEST_F(IndicatorSetTest, ManyChangesKeepLookupsRightAcrossIndexGrowthAndArenaCompaction) {
  auto sha = [](int i) {
    char buf[65];
    snprintf(buf, sizeof buf, "%064x", i);
    return std::string(buf);
  };
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 40'000; ++i) {
      ASSERT_TRUE(set_.Upsert(Ind("id-" + std::to_string(i), "FileSha256", sha(i + round))).ok());
    }
  }
  EXPECT_EQ(set_.size(), 40'000u);
  EXPECT_EQ(set_.MatchFile(sha(2), "", "")->id, "id-0");
  EXPECT_EQ(set_.MatchFile(sha(40'001), "", "")->id, "id-39999");
  EXPECT_FALSE(set_.MatchFile(sha(0), "", ""));
  for (int i = 0; i < 40'000; i += 2) ASSERT_TRUE(set_.Remove("id-" + std::to_string(i)));
  EXPECT_EQ(set_.size(), 20'000u);
  EXPECT_FALSE(set_.MatchFile(sha(2), "", ""));
  EXPECT_EQ(set_.MatchFile(sha(3), "", "")->id, "id-1");
  EXPECT_EQ(set_.FindById("id-39999")->title, "title of id-39999");
}

}  // namespace
}  // namespace quell::agent
