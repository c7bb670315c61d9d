#include "agent/channel/backoff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quell::agent {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, CeilingDoublesUpToMaxAndResets) {
  std::vector<uint64_t> bounds;
  // Always pick the top of the range, so the delay equals the ceiling.
  Backoff backoff(milliseconds(500), milliseconds(5000), [&](uint64_t bound) {
    bounds.push_back(bound);
    return bound;
  });
  std::vector<int64_t> delays;
  for (int i = 0; i < 6; ++i) delays.push_back(backoff.Next().count());
  EXPECT_THAT(delays, ::testing::ElementsAre(500, 1000, 2000, 4000, 5000, 5000));
  backoff.Reset();
  EXPECT_EQ(backoff.Next().count(), 500);
}

TEST(BackoffTest, FullJitterUsesTheWholeRange) {
  uint64_t pick = 0;
  Backoff backoff(milliseconds(100), milliseconds(1000), [&](uint64_t) { return pick; });
  EXPECT_EQ(backoff.Next().count(), 0);  // full jitter may retry at once
  pick = 150;
  EXPECT_EQ(backoff.Next().count(), 150);
  pick = 1'000'000;  // a broken source cannot push the delay past the ceiling
  EXPECT_EQ(backoff.Next().count(), 400);
}

TEST(BackoffTest, ManyAttemptsNeverOverflow) {
  Backoff backoff(milliseconds(500), milliseconds(30000), [](uint64_t b) { return b; });
  for (int i = 0; i < 1000; ++i) backoff.Next();
  EXPECT_EQ(backoff.Next().count(), 30000);
}

TEST(BackoffTest, SystemRandomStaysInRange) {
  auto random = Backoff::SystemRandom();
  for (int i = 0; i < 1000; ++i) EXPECT_LE(random(10), 10u);
  EXPECT_EQ(random(0), 0u);
}

}  // namespace
}  // namespace quell::agent
