#include "agent/indicators/ip_blocklist.h"

#include <gtest/gtest.h>

namespace quell::agent {
namespace {

class RecordingSink final : public DetectionSink {
 public:
  void Report(Detection d) override { got.push_back(std::move(d)); }
  std::vector<Detection> got;
};

std::vector<IpRange> Ranges(std::initializer_list<const char*> texts) {
  std::vector<IpRange> out;
  for (const char* t : texts) out.push_back(*ParseIpRange(t));
  return out;
}

TEST(ReduceRangesTest, NestedRangesCollapseIntoTheWidestDisjointOnesStay) {
  auto r = ReduceRanges(Ranges({"10.1.0.0/16", "10.0.0.0/8", "10.1.2.3", "192.0.2.1", "192.0.2.1",
                                "2001:db8::/32", "2001:db8:1::/48", "2001:db9::1"}));
  std::vector<std::string> cidrs;
  for (auto& x : r) cidrs.push_back(x.cidr);
  EXPECT_EQ(cidrs, (std::vector<std::string>{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32",
                                             "2001:db9::1/128"}));
}

class IpBlocklistTest : public ::testing::Test {
 protected:
  IpBlocklist Make() {
    return IpBlocklist(nft_, &sink_,
                       {.clock = &clock_,
                        .indicator_for = [this](const std::string& cidr) -> std::optional<IndicatorMatch> {
                          IndicatorMatch m;
                          m.id = "ind-" + cidr;
                          m.type = IndicatorType::kIpAddress;
                          m.value = cidr;
                          m.action = IndicatorAction::kBlock;
                          m.severity = "High";
                          m.title = "C2 range";
                          m.generate_alert = alert_;
                          return m;
                        }});
  }
  FakeNftRunner nft_;
  RecordingSink sink_;
  FakeClock clock_;
  bool alert_ = true;
};

TEST_F(IpBlocklistTest, FirstSyncReplacesTheTableThenOnlyChangesAreSent) {
  IpBlocklist b = Make();
  ASSERT_TRUE(b.Sync(Ranges({"10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"})).ok());
  auto scripts = nft_.Scripts();
  ASSERT_EQ(scripts.size(), 1u);
  EXPECT_NE(scripts[0].find("delete table inet quell_indicators"), std::string::npos);
  EXPECT_NE(scripts[0].find("elements = { 10.0.0.0/8 }"), std::string::npos);
  EXPECT_NE(scripts[0].find("elements = { 2001:db8::/32 }"), std::string::npos);
  EXPECT_NE(scripts[0].find("ip saddr @v4 drop"), std::string::npos);
  EXPECT_NE(scripts[0].find("ip daddr @v4 drop"), std::string::npos);
  EXPECT_EQ(scripts[0].find("10.1.0.0/16"), std::string::npos);  // inside 10.0.0.0/8

  nft_.ClearScripts();
  // 10.0.0.0/8 goes: the /16 it covered becomes an element of its own.
  ASSERT_TRUE(b.Sync(Ranges({"10.1.0.0/16", "2001:db8::/32", "198.51.100.7"})).ok());
  scripts = nft_.Scripts();
  ASSERT_EQ(scripts.size(), 1u);
  EXPECT_EQ(scripts[0],
            "delete element inet quell_indicators v4 { 10.0.0.0/8 }\n"
            "add element inet quell_indicators v4 { 10.1.0.0/16, 198.51.100.7/32 }\n");
  nft_.ClearScripts();
  ASSERT_TRUE(b.Sync(Ranges({"10.1.0.0/16", "2001:db8::/32", "198.51.100.7"})).ok());
  EXPECT_TRUE(nft_.Scripts().empty());  // nothing changed, nothing sent
  EXPECT_EQ(b.Installed().size(), 3u);

  ASSERT_TRUE(b.Sync({}).ok());
  EXPECT_EQ(nft_.Scripts().back(),
            "add table inet quell_indicators\ndelete table inet quell_indicators\n");
  EXPECT_TRUE(b.Installed().empty());
}

TEST_F(IpBlocklistTest, FailedIncrementalUpdateFallsBackToAFullReplace) {
  IpBlocklist b = Make();
  ASSERT_TRUE(b.Sync(Ranges({"10.0.0.0/8"})).ok());
  nft_.QueueReply(Internal("nft: No such file or directory"));  // the table was deleted
  ASSERT_TRUE(b.Sync(Ranges({"10.0.0.0/8", "192.0.2.0/24"})).ok());
  auto scripts = nft_.Scripts();
  ASSERT_EQ(scripts.size(), 3u);
  EXPECT_NE(scripts[2].find("elements = { 10.0.0.0/8, 192.0.2.0/24 }"), std::string::npos);
  // A failing full replace is an error and the next Sync tries the full replace again.
  nft_.QueueReply(Internal("x"));
  nft_.QueueReply(Internal("nft: Operation not permitted"));
  EXPECT_FALSE(b.Sync(Ranges({"10.0.0.0/8"})).ok());
  nft_.ClearScripts();
  ASSERT_TRUE(b.Sync(Ranges({"10.0.0.0/8"})).ok());
  EXPECT_NE(nft_.Scripts()[0].find("delete table"), std::string::npos);
}

TEST_F(IpBlocklistTest, GrownCountersBecomeDetectionsOncePerWindow) {
  IpBlocklist b = Make();
  ASSERT_TRUE(b.Sync(Ranges({"10.0.0.0/8", "192.0.2.1"})).ok());
  auto listing = [](uint64_t p8, uint64_t p32) {
    return R"({"nftables": [{"metainfo": {}}, {"set": {"family": "inet", "name": "v4", "elem": [)"
           R"({"elem": {"val": {"prefix": {"addr": "10.0.0.0", "len": 8}}, "counter": {"packets": )" +
           std::to_string(p8) + R"(, "bytes": 0}}}, {"elem": {"val": "192.0.2.1", "counter": {"packets": )" +
           std::to_string(p32) + R"(, "bytes": 0}}}]}}]})";
  };
  const std::string empty_v6 = R"({"nftables": [{"set": {"name": "v6"}}]})";
  nft_.QueueReply(listing(0, 3));
  nft_.QueueReply(empty_v6);
  auto hits = b.PollHits();
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  EXPECT_EQ(*hits, 1u);
  ASSERT_EQ(sink_.got.size(), 1u);
  const Detection& d = sink_.got[0];
  EXPECT_EQ(d.detector_id, "quell.indicators.ip");
  EXPECT_EQ(d.title, "Network traffic blocked by indicator: 192.0.2.1/32");
  EXPECT_EQ(d.severity, "High");
  EXPECT_EQ(d.evidence[0]["ipAddress"], "192.0.2.1");
  EXPECT_EQ(d.dedup_key, "quell.indicators.ip:ind-192.0.2.1/32:192.0.2.1/32");

  // Same counters: nothing new. Grown within the window: suppressed. After it: reported.
  nft_.QueueReply(listing(0, 3));
  nft_.QueueReply(empty_v6);
  EXPECT_EQ(*b.PollHits(), 0u);
  nft_.QueueReply(listing(0, 9));
  nft_.QueueReply(empty_v6);
  EXPECT_EQ(*b.PollHits(), 0u);
  clock_.Advance(60'000);
  nft_.QueueReply(listing(5, 10));
  nft_.QueueReply(empty_v6);
  EXPECT_EQ(*b.PollHits(), 2u);
  EXPECT_EQ(sink_.got.size(), 3u);
}

TEST_F(IpBlocklistTest, NoAlertWithoutGenerateAlert) {
  alert_ = false;
  IpBlocklist b = Make();
  ASSERT_TRUE(b.Sync(Ranges({"192.0.2.1"})).ok());
  nft_.QueueReply(std::string(R"({"nftables": [{"set": {"elem": [{"elem": {"val": "192.0.2.1", "counter": {"packets": 4}}}]}}]})"));
  EXPECT_EQ(*b.PollHits(), 0u);
  EXPECT_TRUE(sink_.got.empty());
}

}  // namespace
}  // namespace quell::agent
