#include "sandbox/sandbox_args.h"

#include <gtest/gtest.h>

namespace quell::sandbox {
namespace {

TEST(SandboxArgsTest, DefaultsFromTheContract) {
  auto a = ParseSandboxArgs({"--sample", "/x/s.bin", "--report", "out.json"});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->options.sample_path, "/x/s.bin");
  EXPECT_EQ(a->report_path, "out.json");
  EXPECT_EQ(a->options.wall_clock, std::chrono::seconds(120));
  EXPECT_EQ(a->options.memory_bytes, 512ull << 20);
  EXPECT_EQ(a->options.max_pids, 128u);
  EXPECT_DOUBLE_EQ(a->options.cpus, 1.0);
  EXPECT_EQ(a->options.file_name, "");
}

TEST(SandboxArgsTest, EveryOption) {
  auto a =
      ParseSandboxArgs({"--sample=s", "--report", "r", "--timeout-seconds", "2", "--memory-mb=64",
                        "--pids", "32", "--cpus", "0.5", "--file-name", "invoice.sh"});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->options.wall_clock, std::chrono::seconds(2));
  EXPECT_EQ(a->options.memory_bytes, 64ull << 20);
  EXPECT_EQ(a->options.max_pids, 32u);
  EXPECT_DOUBLE_EQ(a->options.cpus, 0.5);
  EXPECT_EQ(a->options.file_name, "invoice.sh");
}

TEST(SandboxArgsTest, MistakesNameTheOption) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{"--report", "r"}, "--sample is required"},
           {{"--sample", "s"}, "--report is required"},
           {{"--sample", "s", "--report", "r", "--timeout-seconds", "0"}, "--timeout-seconds"},
           {{"--sample", "s", "--report", "r", "--memory-mb", "lots"}, "--memory-mb"},
           {{"--sample", "s", "--report", "r", "--cpus", "-1"}, "--cpus"},
           {{"--sample", "s", "--report", "r", "--network", "on"}, "unknown option --network"},
           {{"--sample", "s", "--report"}, "--report needs a value"},
           {{"s"}, "unexpected argument 's'"}}) {
    auto a = ParseSandboxArgs(c.args);
    ASSERT_FALSE(a.ok()) << c.says;
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(a.status().message().find(c.says), std::string::npos) << a.status().message();
  }
}

TEST(SandboxArgsTest, Help) {
  auto a = ParseSandboxArgs({"--help"});
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->help);
}

}  // namespace
}  // namespace quell::sandbox
