#include "sandbox/cgroup_limits.h"

#include <gtest/gtest.h>

namespace quell::sandbox {
namespace {

TEST(CgroupLimitsTest, FlatKeyedValues) {
  const std::string text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
  EXPECT_EQ(FlatKeyedValue(text, "oom_kill"), 3u);
  EXPECT_EQ(FlatKeyedValue(text, "under_oom"), 0u);
  EXPECT_EQ(FlatKeyedValue(text, "oom"), std::nullopt);  // a prefix is not the key
  EXPECT_EQ(FlatKeyedValue("max x\n", "max"), std::nullopt);
  EXPECT_EQ(FlatKeyedValue("max 7", "max"), 7u);  // no trailing newline
}

TEST(CgroupLimitsTest, V1CountersSayWhichLimitWasHit) {
  auto c = ParseCgroupCounters("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "max 0\n");
  EXPECT_TRUE(c.memory_limit_hit);
  EXPECT_FALSE(c.pids_limit_hit);
  c = ParseCgroupCounters("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "max 12\n");
  EXPECT_FALSE(c.memory_limit_hit);
  EXPECT_TRUE(c.pids_limit_hit);
}

TEST(CgroupLimitsTest, V2CountersSayWhichLimitWasHit) {
  auto c = ParseCgroupCounters("low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\noom_group_kill 0\n",
                               "max 0\n");
  EXPECT_TRUE(c.memory_limit_hit);
  EXPECT_FALSE(c.pids_limit_hit);
  // Reaching memory.max and reclaiming is not a kill.
  c = ParseCgroupCounters("low 0\nhigh 0\nmax 40\noom 0\noom_kill 0\n", "");
  EXPECT_FALSE(c.memory_limit_hit);
}

TEST(CgroupLimitsTest, CpuQuota) {
  EXPECT_EQ(CpuQuotaMicros(1.0), 100000);
  EXPECT_EQ(CpuQuotaMicros(0.5), 50000);
  EXPECT_EQ(CpuQuotaMicros(2.0), 200000);
  EXPECT_EQ(CpuQuotaMicros(0.001), 1000);  // the kernel's minimum
}

}  // namespace
}  // namespace quell::sandbox
