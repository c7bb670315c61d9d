#include "agent/live/script_args.h"

#include <gtest/gtest.h>

namespace quell::agent::live {
namespace {

using Args = std::vector<std::string>;

Args Split(std::string_view s) {
  auto r = SplitScriptArgs(s);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Args{};
}

TEST(SplitScriptArgsTest, SplitsOnRunsOfWhitespace) {
  EXPECT_EQ(Split(""), Args{});
  EXPECT_EQ(Split("   \t "), Args{});
  EXPECT_EQ(Split("-v  --days 7\t/var/log"), (Args{"-v", "--days", "7", "/var/log"}));
}

TEST(SplitScriptArgsTest, QuotesKeepWhitespaceAndJoinAdjacentParts) {
  EXPECT_EQ(Split("'a b'  \"c  d\""), (Args{"a b", "c  d"}));
  EXPECT_EQ(Split("x'y z'\"w\""), (Args{"xy zw"}));
  EXPECT_EQ(Split("'' \"\" x"), (Args{"", "", "x"}));
  EXPECT_EQ(Split("\"it's\" 'say \"hi\"'"), (Args{"it's", "say \"hi\""}));
  EXPECT_EQ(Split("C:\\path\\x"), (Args{"C:\\path\\x"}));  // backslash is literal
}

TEST(SplitScriptArgsTest, RefusesShellCharactersNamingThem) {
  for (const char* bad : {";", "&", "|", "!", "$", "`", "<", ">"}) {
    auto r = SplitScriptArgs(std::string("a ") + bad + " b");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), std::string("Args may not contain '") + bad + "'");
  }
  // Quoting does not make them acceptable.
  EXPECT_FALSE(SplitScriptArgs("'a;b'").ok());
  EXPECT_EQ(SplitScriptArgs("a\nb").status().message(), "Args may not contain a newline");
  EXPECT_EQ(SplitScriptArgs("a\\\nb").status().message(), "Args may not contain a newline");
  EXPECT_FALSE(SplitScriptArgs(std::string("a\0b", 3)).ok());
}

TEST(SplitScriptArgsTest, RefusesUnbalancedQuotesAndOverlongInput) {
  EXPECT_EQ(SplitScriptArgs("'abc").status().message(), "Args has an unbalanced ' quote");
  EXPECT_EQ(SplitScriptArgs("a \"b").status().message(), "Args has an unbalanced \" quote");
  EXPECT_TRUE(SplitScriptArgs(std::string(kMaxScriptArgsChars, 'x')).ok());
  EXPECT_EQ(SplitScriptArgs(std::string(kMaxScriptArgsChars + 1, 'x')).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quell::agent::live
