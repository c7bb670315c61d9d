#include "common/clock.h"

#include <gtest/gtest.h>

namespace quell {
namespace {

TEST(ClockTest, FormatsUtcWithMillis) {
  EXPECT_EQ(FormatIso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(1546439978226), "2019-01-02T14:39:38.226Z");
}

TEST(ClockTest, ParsesWhatItFormats) {
  for (UnixMillis t : {0LL, 1546439978226LL, 1798675200001LL}) {
    EXPECT_EQ(ParseIso8601(FormatIso8601(t)), t);
  }
}

TEST(ClockTest, ParsesDefenderStyleSevenDigitFractions) {
  EXPECT_EQ(ParseIso8601("2019-01-02T14:39:38.2262283Z"), 1546439978226);
  EXPECT_EQ(ParseIso8601("2019-01-02T14:39:38Z"), 1546439978000);
}

TEST(ClockTest, RejectsMalformed) {
  EXPECT_FALSE(ParseIso8601(""));
  EXPECT_FALSE(ParseIso8601("2019-01-02"));
  EXPECT_FALSE(ParseIso8601("2019-01-02T14:39:38"));
  EXPECT_FALSE(ParseIso8601("2019-01-02T14:39:38.Z"));
  EXPECT_FALSE(ParseIso8601("2019-01-02T14:39:38Zjunk"));
}

TEST(FakeClockTest, MovesOnlyWhenTold) {
  FakeClock clock(1000);
  EXPECT_EQ(clock.Now(), 1000);
  clock.Advance(500);
  EXPECT_EQ(clock.Now(), 1500);
}

}  // namespace
}  // namespace quell
