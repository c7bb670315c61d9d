#include "server/live/live_line.h"

#include <gtest/gtest.h>

namespace quell::server::live {
namespace {

using Argv = std::vector<std::string>;

TEST(ParseLine, SplitsOnBlanksAndQuotes) {
  auto p = ParseLine("  ls\t-l   '/tmp/a b'  \"c \\\"d\\\" \\\\e\" x'y'\"z\" '' ");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->argv, (Argv{"ls", "-l", "/tmp/a b", "c \"d\" \\e", "xyz", ""}));
  EXPECT_FALSE(p->background);
  EXPECT_EQ(p->output_format, "table");
}

TEST(ParseLine, SingleQuotesHaveNoEscapes) {
  auto p = ParseLine(R"(findfile 'a\b' "c\d")");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->argv, (Argv{"findfile", "a\\b", "c\\d"}));
}

TEST(ParseLine, TrailingAmpersandIsBackground) {
  auto p = ParseLine("getfile /var/log/syslog &");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->background);
  EXPECT_EQ(p->argv, (Argv{"getfile", "/var/log/syslog"}));
  // Quoted, it is an argument (which run then refuses), not a background marker.
  auto q = ParseLine("run x.sh '&'");
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->background);
  EXPECT_EQ(q->argv.back(), "&");
}

TEST(ParseLine, OutputFormatAnywhereAfterTheName) {
  auto p = ParseLine("processes -output json &");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->output_format, "json");
  EXPECT_EQ(p->argv, (Argv{"processes"}));
  EXPECT_TRUE(p->background);
  auto t = ParseLine("ls -output table /etc");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->argv, (Argv{"ls", "/etc"}));
  EXPECT_FALSE(ParseLine("ls -output xml").ok());
  EXPECT_FALSE(ParseLine("ls -output").ok());
}

TEST(ParseLine, Refusals) {
  EXPECT_NE(ParseLine("ls 'abc").status().message().find("unbalanced"), std::string::npos);
  EXPECT_NE(ParseLine("ls \"abc").status().message().find("unbalanced"), std::string::npos);
  EXPECT_FALSE(ParseLine("   ").ok());
  EXPECT_FALSE(ParseLine("&").ok());
  EXPECT_FALSE(ParseLine(std::string(kMaxLineBytes + 1, 'a')).ok());
  EXPECT_FALSE(ParseLine(std::string("ls \0x", 6)).ok());
  // Found by the fuzz target: a NUL inside single quotes got into a word.
  EXPECT_FALSE(ParseLine(std::string("getfile '/tmp/a\0b'", 18)).ok());
  EXPECT_FALSE(ParseLine(std::string("getfile \"/tmp/a\0b\"", 18)).ok());
}

TEST(CheckRunArguments, RefusesShellCharactersAndNamesThem) {
  EXPECT_TRUE(CheckRunArguments({"-v", "/tmp/a b", "x=1", "a'b"}).ok());
  for (const char* bad : {"a;b", "a&b", "a|b", "!x", "$HOME", "`id`", "<in", ">out", "a\nb"}) {
    Status s = CheckRunArguments({"ok", bad});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(CheckRunArguments({"a;b"}).message().find("';'"), std::string::npos);
  EXPECT_NE(CheckRunArguments({"a\nb"}).message().find("newline"), std::string::npos);
}

TEST(Commands, TableMatchesTheContract) {
  ASSERT_NE(FindCommand("run"), nullptr);
  EXPECT_EQ(FindCommand("run")->role, Role::kAdmin);
  EXPECT_EQ(FindCommand("run")->time_limit_seconds, 600u);
  EXPECT_EQ(FindCommand("getfile")->time_limit_seconds, 3600u);
  EXPECT_EQ(FindCommand("findfile")->time_limit_seconds, 300u);
  EXPECT_EQ(FindCommand("ls")->time_limit_seconds, 120u);
  for (const char* admin : {"putfile", "run", "remediate", "undo", "isolate", "release"}) {
    EXPECT_EQ(FindCommand(admin)->role, Role::kAdmin) << admin;
  }
  for (const char* server : {"help", "jobs", "fg", "status", "library", "scan", "collect"}) {
    EXPECT_EQ(FindCommand(server)->side, CommandSide::kServer) << server;
  }
  EXPECT_EQ(FindCommand("ls")->side, CommandSide::kAgent);
  EXPECT_EQ(FindCommand("rm"), nullptr);
  EXPECT_EQ(FindCommand("LS"), nullptr);
}

}  // namespace
}  // namespace quell::server::live
