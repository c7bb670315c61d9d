#include "agent/indicators/indicator_enforcer.h"

#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

quell::v1::Indicator Ind(std::string id, std::string type, std::string value, int64_t expires = 0) {
  quell::v1::Indicator i;
  i.set_id(std::move(id));
  i.set_type(std::move(type));
  i.set_value(std::move(value));
  i.set_action("Block");
  i.set_generate_alert(true);
  i.set_expiration_unix_ms(expires);
  return i;
}

class IndicatorEnforcerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = IndicatorStore::Open({.dir = dir_.path() + "/ind", .clock = &clock_});
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  quell::testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<IndicatorStore> store_;
  FakeNftRunner nft_;
};

TEST_F(IndicatorEnforcerTest, GateAndIpSetsFollowDeltasAndExpiry) {
  IpBlocklist ips(nft_, nullptr, {.clock = &clock_});
  std::vector<bool> gate_calls;
  IndicatorEnforcer e(*store_, {.set_file_gate = [&](bool on) { gate_calls.push_back(on); return Status::Ok(); },
                                .ip_blocklist = &ips,
                                .clock = &clock_,
                                .hit_poll_interval = std::chrono::milliseconds(3'600'000)});
  store_->OnChange([&] { (void)e.Apply(); });
  ASSERT_TRUE(e.Apply().ok());
  EXPECT_FALSE(e.file_gate_wanted());
  EXPECT_TRUE(ips.Installed().empty());

  quell::v1::IndicatorDelta d;
  d.set_to_version(1);
  d.set_full(true);
  *d.add_upserts() = Ind("f", "FileSha256", std::string(64, 'a'), clock_.Now() + 5'000);
  *d.add_upserts() = Ind("ip", "IpAddress", "203.0.113.0/24", clock_.Now() + 9'000);
  ASSERT_TRUE(store_->Apply(d).ok());
  EXPECT_TRUE(e.file_gate_wanted());
  EXPECT_EQ(ips.Installed().size(), 1u);
  EXPECT_EQ(e.next_expiry(), clock_.Now() + 5'000);

  clock_.Advance(4'999);
  e.Tick();
  EXPECT_TRUE(e.file_gate_wanted());
  clock_.Advance(1);
  e.Tick();  // the hash indicator expired: the gate is released without any message
  EXPECT_FALSE(e.file_gate_wanted());
  EXPECT_EQ(ips.Installed().size(), 1u);
  clock_.Advance(4'000);
  e.Tick();
  EXPECT_TRUE(ips.Installed().empty());
  EXPECT_EQ(gate_calls.back(), false);
  EXPECT_EQ(store_->size(), 0u);
}

TEST_F(IndicatorEnforcerTest, AFailedApplyIsRetriedOnTick) {
  int fail = 1;
  bool gate = false;
  IndicatorEnforcer e(*store_, {.set_file_gate = [&](bool on) {
                                  if (fail-- > 0) return FailedPrecondition("guard");
                                  gate = on;
                                  return Status::Ok();
                                },
                                .clock = &clock_});
  quell::v1::IndicatorDelta d;
  d.set_to_version(1);
  d.set_full(true);
  *d.add_upserts() = Ind("f", "FileSha256", std::string(64, 'a'));
  ASSERT_TRUE(store_->Apply(d).ok());
  EXPECT_FALSE(e.Apply().ok());
  EXPECT_FALSE(gate);
  e.Tick();
  EXPECT_TRUE(gate);
}

TEST_F(IndicatorEnforcerTest, WrittenFileWatchRunsOnlyWhileABlockAndRemediateHashIsLive) {
  std::vector<bool> watch;
  IndicatorEnforcer e(*store_, {.set_file_gate = [](bool) { return Status::Ok(); },
                                .set_written_file_watch =
                                    [&](bool on) {
                                      watch.push_back(on);
                                      return Status::Ok();
                                    },
                                .clock = &clock_});
  store_->OnChange([&] { (void)e.Apply(); });
  quell::v1::IndicatorDelta d;
  d.set_to_version(1);
  d.set_full(true);
  *d.add_upserts() = Ind("block", "FileSha256", std::string(64, 'a'));  // Block only
  ASSERT_TRUE(store_->Apply(d).ok());
  ASSERT_FALSE(watch.empty());
  EXPECT_FALSE(watch.back());
  quell::v1::IndicatorDelta d2;
  d2.set_from_version(1);
  d2.set_to_version(2);
  auto bar = Ind("bar", "FileMd5", std::string(32, 'b'), clock_.Now() + 1'000);
  bar.set_action("BlockAndRemediate");
  *d2.add_upserts() = bar;
  ASSERT_TRUE(store_->Apply(d2).ok());
  EXPECT_TRUE(watch.back());
  clock_.Advance(1'000);
  e.Tick();  // expired: the watch stops by itself
  EXPECT_FALSE(watch.back());
}

TEST_F(IndicatorEnforcerTest, DnsFilterRunsOnlyWhileADomainOrUrlIndicatorIsEnforced) {
  std::vector<bool> dns;
  IndicatorEnforcer e(*store_, {.set_dns_filter =
                                    [&](bool on) {
                                      dns.push_back(on);
                                      return Status::Ok();
                                    },
                                .clock = &clock_});
  store_->OnChange([&] { (void)e.Apply(); });
  quell::v1::IndicatorDelta d;
  d.set_to_version(1);
  d.set_full(true);
  auto allowed = Ind("allowed", "DomainName", "good.example");
  allowed.set_action("Allowed");  // needs no filter: everything not blocked is forwarded
  *d.add_upserts() = allowed;
  *d.add_upserts() = Ind("ip", "IpAddress", "192.0.2.1");
  ASSERT_TRUE(store_->Apply(d).ok());
  ASSERT_FALSE(dns.empty());
  EXPECT_FALSE(dns.back());
  EXPECT_FALSE(e.dns_filter_wanted());

  quell::v1::IndicatorDelta d2;
  d2.set_from_version(1);
  d2.set_to_version(2);
  auto url = Ind("url", "Url", "https://bad.example/x", clock_.Now() + 1'000);
  url.set_action("Audit");
  *d2.add_upserts() = url;
  ASSERT_TRUE(store_->Apply(d2).ok());
  EXPECT_TRUE(dns.back());
  EXPECT_TRUE(e.dns_filter_wanted());
  clock_.Advance(1'000);
  e.Tick();  // expired: the filter and its steering go by themselves
  EXPECT_FALSE(dns.back());
}

}  // namespace
}  // namespace quell::agent
