#include "agent/live/live_output_stream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/live/live_shell.h"

namespace quell::agent::live {
namespace {

using namespace std::chrono_literals;

class LiveOutputStreamTest : public ::testing::Test {
 protected:
  LiveOutputStream Stream(uint64_t max_bytes = 1 << 20) {
    return LiveOutputStream(max_bytes, [this](std::string chunk) { sent_.push_back(chunk); });
  }
  std::string All() const {
    std::string all;
    for (const auto& c : sent_) all += c;
    return all;
  }
  std::vector<std::string> sent_;
};

TEST_F(LiveOutputStreamTest, ALittleOutputWaitsBrieflyThenLeavesWithoutTheCommandEnding) {
  LiveOutputStream out = Stream();
  out.Write("started\n");
  EXPECT_TRUE(sent_.empty());  // more may follow at once: wait a little
  out.FlushOlderThan(200ms, LiveOutputStream::Clock::now() - 1s);
  EXPECT_TRUE(sent_.empty());  // not old enough yet
  out.FlushOlderThan(200ms, LiveOutputStream::Clock::now() + 1s);
  EXPECT_EQ(sent_, std::vector<std::string>{"started\n"});
  out.Finish();
  EXPECT_EQ(sent_.size(), 1u);  // nothing left
}

TEST_F(LiveOutputStreamTest, LargeOutputLeavesInFullChunksAtOnce) {
  LiveOutputStream out = Stream();
  const std::string big(150 * 1024, 'x');
  out.Write(big);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].size(), kMaxLiveChunkBytes);
  out.Finish();
  EXPECT_EQ(All(), big);
  for (const auto& c : sent_) EXPECT_LE(c.size(), kMaxLiveChunkBytes);
}

TEST_F(LiveOutputStreamTest, ACharacterSplitAcrossWritesArrivesWhole) {
  LiveOutputStream out = Stream();
  out.Write("caf\xC3");
  out.FlushOlderThan(0ms, LiveOutputStream::Clock::now() + 1s);
  out.Write("\xA9 ok");
  out.Finish();
  EXPECT_EQ(All(), "caf\xC3\xA9 ok");
  for (const auto& c : sent_) EXPECT_NE(c.back(), '\xC3');
}

TEST_F(LiveOutputStreamTest, BytesThatAreNotUtf8AreShownAsEscapes) {
  LiveOutputStream out = Stream();
  out.Write("a\xFF" "b");
  out.Write("\xE2\x82");  // a sequence the command never finished
  out.Finish();
  EXPECT_EQ(All(), "a\\xffb\\xe2\\x82");
}

TEST_F(LiveOutputStreamTest, OutputBeyondTheCapIsCutWithANote) {
  LiveOutputStream out = Stream(10);
  out.Write("0123456789abcdef");
  out.Write("more");
  out.Finish();
  EXPECT_EQ(All(), "0123456789\n[output cut at 10 bytes]\n");
}

}  // namespace
}  // namespace quell::agent::live
