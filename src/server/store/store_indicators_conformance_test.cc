// The Store suite for indicators: versioned changes, tombstones, submit-or-update, acks.
// Written against the interface only, like store_conformance_test.cc; every implementation
// joins the INSTANTIATE_TEST_SUITE_P at the bottom.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>

#include "common/testing/temp_dir.h"
#include "server/store/store_factory_testing.h"
#include "server/store/store.h"

namespace quell::server {
namespace {

using testing::StoreFactory;

constexpr UnixMillis kT0 = 1'700'000'000'000;

Indicator MakeIndicator(const std::string& id, const std::string& value,
                        IndicatorType type = IndicatorType::kFileSha256) {
  return {.id = id,
          .type = type,
          .value = value,
          .action = IndicatorAction::kBlock,
          .severity = AlertSeverity::kHigh,
          .title = "bad " + value,
          .description = "known bad",
          .recommended_actions = "reimage",
          .application = "",
          .expiration_time = kT0 + 86'400'000,
          .generate_alert = true,
          .rbac_group_names = {"servers", "lab"},
          .created_by = "alice",
          .last_updated_by = "alice",
          .creation_time = kT0,
          .last_update_time = kT0};
}

AuditEntry Audit(const std::string& operation, UnixMillis time = kT0) {
  return {.time = time, .actor = "alice", .operation = operation};
}

Device MakeDevice(const std::string& id) {
  return {.id = id, .computer_dns_name = id, .os_platform = "Linux", .rbac_group_name = "servers",
          .first_seen = kT0, .last_seen = kT0};
}

class StoreIndicatorsTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    auto store = GetParam().open(dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  Store& store() { return *store_; }

  std::vector<Indicator> Put(std::vector<Indicator> indicators, UnixMillis time = kT0) {
    auto stored = store().PutIndicators(indicators, Audit("indicator.submitted", time));
    EXPECT_TRUE(stored.ok()) << stored.status().ToString();
    return stored.ok() ? *stored : std::vector<Indicator>{};
  }

  std::vector<std::pair<int64_t, std::string>> Changes(int64_t after, bool removed = true,
                                                       size_t limit = 100) {
    auto version = store().GetIndicatorVersion();
    EXPECT_TRUE(version.ok());
    auto changes = store().ListIndicatorChanges(after, version->current, removed, limit);
    EXPECT_TRUE(changes.ok()) << changes.status().ToString();
    std::vector<std::pair<int64_t, std::string>> out;
    for (const IndicatorChange& c : *changes) {
      out.emplace_back(c.version, (c.indicator ? "+" : "-") + c.id);
    }
    return out;
  }

  quell::testing::TempDir temp_dir_;
  std::string dir_ = temp_dir_.path();
  std::unique_ptr<Store> store_;
};

using ChangeList = std::vector<std::pair<int64_t, std::string>>;

TEST_P(StoreIndicatorsTest, PutStoresEveryFieldAndAssignsIncreasingVersions) {
  EXPECT_EQ(store().GetIndicatorVersion()->current, 0);
  std::vector<Indicator> stored = Put({MakeIndicator("i1", "aa"), MakeIndicator("i2", "bb")});
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].version, 1);
  EXPECT_EQ(stored[1].version, 2);
  Indicator expected = MakeIndicator("i1", "aa");
  expected.version = 1;
  EXPECT_EQ(*store().GetIndicator("i1"), expected);
  EXPECT_EQ(store().GetIndicatorVersion()->current, 2);
  EXPECT_EQ(store().GetIndicator("nope").status().code(), StatusCode::kNotFound);
  // One audit entry per indicator, in the same transaction.
  auto audit = store().ListAudit({.target = "i2"});
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].operation, "indicator.submitted");
}

TEST_P(StoreIndicatorsTest, SubmittingAnExistingTypeAndValueUpdatesIt) {
  Put({MakeIndicator("i1", "aa")});
  Indicator again = MakeIndicator("other-id", "aa");
  again.action = IndicatorAction::kAllowed;
  again.created_by = "bob";
  again.last_updated_by = "bob";
  again.creation_time = kT0 + 5;
  again.last_update_time = kT0 + 5;
  std::vector<Indicator> stored = Put({again});
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].id, "i1");                // the existing one
  EXPECT_EQ(stored[0].created_by, "alice");     // kept
  EXPECT_EQ(stored[0].creation_time, kT0);      // kept
  EXPECT_EQ(stored[0].last_updated_by, "bob");
  EXPECT_EQ(stored[0].version, 2);
  EXPECT_EQ(store().GetIndicator("i1")->action, IndicatorAction::kAllowed);
  EXPECT_EQ(store().GetIndicator("other-id").status().code(), StatusCode::kNotFound);
  // The same value under another type is another indicator.
  Put({MakeIndicator("i3", "aa", IndicatorType::kFileMd5)});
  EXPECT_EQ(store().ListIndicators({})->size(), 2u);
}

TEST_P(StoreIndicatorsTest, DuplicateInOneCallWritesNothing) {
  auto result = store().PutIndicators({MakeIndicator("i1", "aa"), MakeIndicator("i2", "aa")},
                                      Audit("indicator.imported"));
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store().ListIndicators({})->empty());
  EXPECT_EQ(store().GetIndicatorVersion()->current, 0);
}

TEST_P(StoreIndicatorsTest, DeleteLeavesTombstonesAndChangesAreOrderedByVersion) {
  Put({MakeIndicator("i1", "aa"), MakeIndicator("i2", "bb"), MakeIndicator("i3", "cc")});
  auto deleted = store().DeleteIndicators({"i2", "missing", "i2"}, Audit("indicator.deleted"));
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, (std::vector<std::string>{"i2"}));
  Put({MakeIndicator("x", "aa")});  // updates i1 at version 5
  EXPECT_EQ(Changes(0), (ChangeList{{3, "+i3"}, {4, "-i2"}, {5, "+i1"}}));
  EXPECT_EQ(Changes(3), (ChangeList{{4, "-i2"}, {5, "+i1"}}));
  EXPECT_EQ(Changes(0, /*removed=*/false), (ChangeList{{3, "+i3"}, {5, "+i1"}}));
  EXPECT_EQ(Changes(0, true, 2), (ChangeList{{3, "+i3"}, {4, "-i2"}}));
  // `upto` bounds the range, so pages of one delta stay within one version.
  auto bounded = store().ListIndicatorChanges(0, 4, true, 100);
  EXPECT_EQ(bounded->size(), 2u);
  // Deleting nothing changes nothing.
  EXPECT_TRUE(store().DeleteIndicators({"missing"}, Audit("indicator.deleted"))->empty());
  EXPECT_EQ(store().GetIndicatorVersion()->current, 5);
}

TEST_P(StoreIndicatorsTest, PruningTombstonesRaisesTheDeltaFloor) {
  Put({MakeIndicator("i1", "aa"), MakeIndicator("i2", "bb"), MakeIndicator("i3", "cc")});
  ASSERT_TRUE(store().DeleteIndicators({"i1"}, Audit("indicator.deleted", kT0 + 10)).ok());
  ASSERT_TRUE(store().DeleteIndicators({"i2"}, Audit("indicator.deleted", kT0 + 20)).ok());
  ASSERT_TRUE(store().PruneIndicatorTombstones(kT0 + 15).ok());
  EXPECT_EQ(store().GetIndicatorVersion()->delta_floor, 4);
  EXPECT_EQ(Changes(0), (ChangeList{{3, "+i3"}, {5, "-i2"}}));
  ASSERT_TRUE(store().PruneIndicatorTombstones(kT0).ok());  // nothing older: floor stays
  EXPECT_EQ(store().GetIndicatorVersion()->delta_floor, 4);
}

TEST_P(StoreIndicatorsTest, ListFiltersAndPages) {
  Indicator ip = MakeIndicator("c", "10.0.0.0/8", IndicatorType::kIpAddress);
  ip.action = IndicatorAction::kAudit;
  Put({MakeIndicator("b", "aa"), ip, MakeIndicator("a", "bb")});
  auto ids = [&](IndicatorFilter f) {
    std::vector<std::string> out;
    auto listed = store().ListIndicators(f);
    EXPECT_TRUE(listed.ok());
    if (!listed.ok()) return out;
    for (const Indicator& i : listed.value()) out.push_back(i.id);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({}), (V{"a", "b", "c"}));
  EXPECT_EQ(ids({.type = IndicatorType::kIpAddress}), (V{"c"}));
  EXPECT_EQ(ids({.action = IndicatorAction::kBlock}), (V{"a", "b"}));
  EXPECT_EQ(ids({.value = "aa"}), (V{"b"}));
  EXPECT_EQ(ids({.skip = 1, .top = 1}), (V{"b"}));
}

TEST_P(StoreIndicatorsTest, DeviceGroupAndAcks) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
  ASSERT_TRUE(store().SetDeviceGroup("dev-a", "lab").ok());
  EXPECT_EQ(store().GetDevice("dev-a")->rbac_group_name, "lab");
  EXPECT_EQ(store().SetDeviceGroup("nope", "lab").code(), StatusCode::kNotFound);

  EXPECT_FALSE(store().GetIndicatorAck("dev-a")->has_value());
  ASSERT_TRUE(store().RecordIndicatorAck("dev-a", {.version = 7, .group_name = "lab", .time = kT0}).ok());
  ASSERT_TRUE(store().RecordIndicatorAck("dev-a", {.version = 9, .group_name = "lab", .time = kT0 + 1}).ok());
  IndicatorAckRecord expected{.version = 9, .group_name = "lab", .time = kT0 + 1};
  EXPECT_EQ(store().GetIndicatorAck("dev-a")->value(), expected);
  EXPECT_EQ(store().ListIndicatorAcks()->at("dev-a"), expected);
  EXPECT_EQ(store().RecordIndicatorAck("nope", expected).code(), StatusCode::kNotFound);
}

// The interleaving of a Hello with a group change: the session read the device row, an API
// call set the group, then the session wrote the agent's inventory. The group must survive.
TEST_P(StoreIndicatorsTest, InventoryUpdateKeepsAGroupSetAfterTheRowWasRead) {
  ASSERT_TRUE(store().CreateDevice(MakeDevice("dev-a")).ok());
  Device read = *store().GetDevice("dev-a");
  ASSERT_TRUE(store().SetDeviceGroup("dev-a", "lab").ok());
  Device reported = read;  // still says "servers"
  reported.computer_dns_name = "host-a.example";
  reported.agent_version = "1.2.3";
  reported.ip_addresses = {"10.0.0.5"};
  reported.last_ip_address = "10.0.0.5";
  reported.last_seen = kT0 + 5000;
  reported.isolation = IsolationState::kFull;  // not the agent's to say
  ASSERT_TRUE(store().UpdateDeviceInventory(reported).ok());
  Device now = *store().GetDevice("dev-a");
  EXPECT_EQ(now.rbac_group_name, "lab");
  EXPECT_EQ(now.isolation, IsolationState::kNotIsolated);
  EXPECT_EQ(now.computer_dns_name, "host-a.example");
  EXPECT_EQ(now.agent_version, "1.2.3");
  EXPECT_EQ(now.ip_addresses, (std::vector<std::string>{"10.0.0.5"}));
  EXPECT_EQ(now.last_seen, kT0 + 5000);
  reported.last_seen = kT0;  // an older report never moves last_seen back
  ASSERT_TRUE(store().UpdateDeviceInventory(reported).ok());
  EXPECT_EQ(store().GetDevice("dev-a")->last_seen, kT0 + 5000);
  reported.id = "nope";
  EXPECT_EQ(store().UpdateDeviceInventory(reported).code(), StatusCode::kNotFound);
}

// 20,000 indicators in 40 calls, then a full listing in pages: the costs per call must not
// grow with the table (a quadratic path would show as the last batch being far slower).
TEST_P(StoreIndicatorsTest, BatchesDoNotSlowDownAsTheTableGrows) {
  using Clock = std::chrono::steady_clock;
  std::chrono::duration<double> first{}, last{};
  for (int batch = 0; batch < 40; ++batch) {
    std::vector<Indicator> indicators;
    for (int i = 0; i < 500; ++i) {
      std::string n = std::to_string(batch * 500 + i);
      indicators.push_back(MakeIndicator("id-" + n, "v" + n));
    }
    auto start = Clock::now();
    ASSERT_TRUE(store().PutIndicators(indicators, Audit("indicator.imported")).ok());
    auto took = Clock::now() - start;
    if (batch == 1) first = took;
    if (batch == 39) last = took;
  }
  EXPECT_LT(last.count(), first.count() * 5 + 0.05);
  int64_t after = 0;
  size_t total = 0;
  while (true) {
    auto page = store().ListIndicatorChanges(after, 20'000, true, 5000);
    ASSERT_TRUE(page.ok());
    if (page->empty()) break;
    total += page->size();
    after = page->back().version;
  }
  EXPECT_EQ(total, 20'000u);
}

INSTANTIATE_TEST_SUITE_P(
    Stores, StoreIndicatorsTest,
    testing::AllStores(), testing::StoreName);

}  // namespace
}  // namespace quell::server
