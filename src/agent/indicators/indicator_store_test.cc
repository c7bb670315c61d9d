#include "agent/indicators/indicator_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

std::string Sha(int i) {
  char buf[65];
  snprintf(buf, sizeof buf, "%064x", i);
  return buf;
}

quell::v1::Indicator Ind(int i, std::string action = "Block") {
  quell::v1::Indicator x;
  x.set_id("ind-" + std::to_string(i));
  x.set_type("FileSha256");
  x.set_value(Sha(i));
  x.set_action(std::move(action));
  x.set_title("t" + std::to_string(i));
  x.set_generate_alert(true);
  return x;
}

quell::v1::IndicatorDelta Delta(uint64_t from, uint64_t to, bool full, std::vector<int> upserts,
                                std::vector<int> removed = {}, bool more = false) {
  quell::v1::IndicatorDelta d;
  d.set_from_version(from);
  d.set_to_version(to);
  d.set_full(full);
  d.set_more(more);
  for (int i : upserts) *d.add_upserts() = Ind(i);
  for (int i : removed) d.add_removed_ids("ind-" + std::to_string(i));
  return d;
}

class IndicatorStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<IndicatorStore> Open() {
    auto s = IndicatorStore::Open(
        {.dir = dir_.path() + "/indicators", .clock = &clock_, .compact_log_bytes = compact_});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  bool Has(const IndicatorStore& s, int i) { return s.MatchFile(Sha(i), "", "").has_value(); }

  quell::testing::TempDir dir_;
  FakeClock clock_;
  uint64_t compact_ = 16ull << 20;
};

TEST_F(IndicatorStoreTest, FreshStoreIsAtVersionZero) {
  auto s = Open();
  EXPECT_EQ(s->version(), 0u);
  EXPECT_EQ(s->size(), 0u);
}

TEST_F(IndicatorStoreTest, FullSnapshotThenDeltasSurviveARestart) {
  {
    auto s = Open();
    auto o = s->Apply(Delta(0, 5, true, {1, 2, 3}));
    ASSERT_TRUE(o.ok());
    EXPECT_TRUE(o->complete);
    EXPECT_EQ(o->version, 5u);
    EXPECT_EQ(o->upserts, 3u);
    o = s->Apply(Delta(5, 7, false, {4}, {2}));
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->version, 7u);
    EXPECT_EQ(o->removals, 1u);
    EXPECT_TRUE(Has(*s, 4));
    EXPECT_FALSE(Has(*s, 2));
  }
  auto s = Open();
  EXPECT_EQ(s->version(), 7u);
  EXPECT_EQ(s->size(), 3u);
  EXPECT_TRUE(Has(*s, 1));
  EXPECT_FALSE(Has(*s, 2));
  EXPECT_TRUE(Has(*s, 4));
  EXPECT_EQ(s->FindById("ind-4")->title, "t4");
}

TEST_F(IndicatorStoreTest, ChunkedTransferAppliesOnlyWithItsLastChunk) {
  auto s = Open();
  ASSERT_TRUE(s->Apply(Delta(0, 1, true, {1})).ok());
  auto o = s->Apply(Delta(0, 9, true, {10, 11}, {}, /*more=*/true));
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->complete);
  EXPECT_EQ(s->version(), 1u);
  EXPECT_TRUE(Has(*s, 1));  // the old set stays in force meanwhile
  EXPECT_FALSE(Has(*s, 10));
  o = s->Apply(Delta(0, 9, true, {12}));
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->complete);
  EXPECT_EQ(o->upserts, 3u);
  EXPECT_EQ(s->version(), 9u);
  EXPECT_FALSE(Has(*s, 1));  // a full snapshot replaces everything
  EXPECT_TRUE(Has(*s, 10) && Has(*s, 11) && Has(*s, 12));

  // A chunked delta.
  ASSERT_TRUE(s->Apply(Delta(9, 10, false, {20}, {}, true)).ok());
  EXPECT_FALSE(Has(*s, 20));
  ASSERT_TRUE(s->Apply(Delta(9, 10, false, {21}, {10})).ok());
  EXPECT_TRUE(Has(*s, 20) && Has(*s, 21));
  EXPECT_FALSE(Has(*s, 10));
  s.reset();
  s = Open();
  EXPECT_EQ(s->version(), 10u);
  EXPECT_TRUE(Has(*s, 20) && Has(*s, 21) && Has(*s, 11));
  EXPECT_FALSE(Has(*s, 10));
}

TEST_F(IndicatorStoreTest, CrashBetweenChunksKeepsThePreviousVersion) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Apply(Delta(0, 3, true, {1})).ok());
    ASSERT_TRUE(s->Apply(Delta(0, 8, true, {2}, {}, true)).ok());    // full, interrupted
  }
  {
    auto s = Open();
    EXPECT_EQ(s->version(), 3u);
    EXPECT_TRUE(Has(*s, 1));
    EXPECT_FALSE(Has(*s, 2));
    EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/indicators/snapshot.tmp"));
    ASSERT_TRUE(s->Apply(Delta(3, 4, false, {5}, {}, true)).ok());  // delta, interrupted
  }
  auto s = Open();
  EXPECT_EQ(s->version(), 3u);
  EXPECT_FALSE(Has(*s, 5));
  // The resent transfer applies cleanly.
  ASSERT_TRUE(s->Apply(Delta(3, 4, false, {5})).ok());
  EXPECT_EQ(s->version(), 4u);
}

TEST_F(IndicatorStoreTest, AbortPartialDropsAHalfTransferAndANewTransferReplacesIt) {
  auto s = Open();
  ASSERT_TRUE(s->Apply(Delta(0, 2, true, {1, 2}, {}, true)).ok());
  s->AbortPartial();
  ASSERT_TRUE(s->Apply(Delta(0, 2, true, {3})).ok());
  EXPECT_FALSE(Has(*s, 1));
  EXPECT_TRUE(Has(*s, 3));
  // A different transfer arriving mid-way replaces the unfinished one.
  ASSERT_TRUE(s->Apply(Delta(2, 3, false, {7}, {}, true)).ok());
  ASSERT_TRUE(s->Apply(Delta(0, 4, true, {8})).ok());
  EXPECT_EQ(s->version(), 4u);
  EXPECT_FALSE(Has(*s, 7));
  EXPECT_TRUE(Has(*s, 8));
}

TEST_F(IndicatorStoreTest, DeltaNotFollowingTheCurrentVersionIsIgnored) {
  auto s = Open();
  ASSERT_TRUE(s->Apply(Delta(0, 2, true, {1})).ok());
  auto o = s->Apply(Delta(5, 6, false, {9}));
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->out_of_sync);
  EXPECT_FALSE(o->complete);
  EXPECT_EQ(o->version, 2u);
  EXPECT_FALSE(Has(*s, 9));
}

TEST_F(IndicatorStoreTest, TornLogTailIsCutAndLaterAppendsStillRestore) {
  {
    auto s = Open();
    ASSERT_TRUE(s->Apply(Delta(0, 1, true, {1})).ok());
    ASSERT_TRUE(s->Apply(Delta(1, 2, false, {2})).ok());
  }
  const std::string log = dir_.path() + "/indicators/log";
  auto text = ReadFile(log);
  ASSERT_TRUE(text.ok());
  // A crash in the middle of appending delta 2 -> 3.
  ASSERT_TRUE(WriteFileAtomic(log, *text + std::string("\x40\x00\x00\x00garbage", 11)).ok());
  {
    auto s = Open();
    EXPECT_EQ(s->version(), 2u);
    ASSERT_TRUE(s->Apply(Delta(2, 3, false, {3})).ok());
  }
  auto s = Open();
  EXPECT_EQ(s->version(), 3u);
  EXPECT_TRUE(Has(*s, 1) && Has(*s, 2) && Has(*s, 3));
}

TEST_F(IndicatorStoreTest, LogIsFoldedIntoTheSnapshotWhenItGrows) {
  compact_ = 1;  // fold after every delta
  {
    auto s = Open();
    ASSERT_TRUE(s->Apply(Delta(0, 1, true, {1})).ok());
    for (uint64_t v = 1; v < 20; ++v) ASSERT_TRUE(s->Apply(Delta(v, v + 1, false, {int(v) + 1})).ok());
  }
  auto log = ReadFile(dir_.path() + "/indicators/log");
  ASSERT_TRUE(log.ok());
  // Folded whenever it outgrew the snapshot: a few deltas at most, not all 19 (~2 KB).
  EXPECT_LT(log->size(), 700u);
  auto s = Open();
  EXPECT_EQ(s->version(), 20u);
  EXPECT_EQ(s->size(), 20u);
  EXPECT_TRUE(Has(*s, 20));
}

TEST_F(IndicatorStoreTest, ListenersRunAfterEachCompletedDeltaAndPurge) {
  auto s = Open();
  int calls = 0;
  s->OnChange([&] { ++calls; });
  ASSERT_TRUE(s->Apply(Delta(0, 1, true, {1}, {}, true)).ok());
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(s->Apply(Delta(0, 1, true, {2})).ok());
  EXPECT_EQ(calls, 1);
  quell::v1::IndicatorDelta d = Delta(1, 2, false, {});
  auto expiring = Ind(3);
  expiring.set_expiration_unix_ms(clock_.Now() + 1000);
  *d.add_upserts() = expiring;
  ASSERT_TRUE(s->Apply(d).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(Has(*s, 3));
  clock_.Advance(1000);
  EXPECT_FALSE(Has(*s, 3));  // no message needed
  EXPECT_EQ(s->Purge(), 1u);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(s->Purge(), 0u);
  EXPECT_EQ(calls, 3);
}

TEST_F(IndicatorStoreTest, UnwritableDirFailsTheApplyAndKeepsTheVersion) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  auto s = Open();
  ASSERT_TRUE(s->Apply(Delta(0, 1, true, {1})).ok());
  ASSERT_EQ(chmod((dir_.path() + "/indicators").c_str(), 0500), 0);
  auto o = s->Apply(Delta(0, 2, true, {2}));
  chmod((dir_.path() + "/indicators").c_str(), 0700);
  EXPECT_FALSE(o.ok());
  EXPECT_EQ(s->version(), 1u);
  EXPECT_TRUE(Has(*s, 1));
}

}  // namespace
}  // namespace quell::agent
