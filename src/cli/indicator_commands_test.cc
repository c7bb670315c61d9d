#include "cli/indicator_commands.h"

#include <gtest/gtest.h>

namespace quell::cli {
namespace {

using nlohmann::json;

TEST(IndicatorCsvTest, ReadsDefendersTemplate) {
  IndicatorFile f = ParseIndicatorCsv(
      "IndicatorType,IndicatorValue,ExpirationTime,Action,Severity,Title,Description,"
      "RecommendedActions,RbacGroups,GenerateAlert\r\n"
      "FileSha256,AAAA,,Block,High,bad,\"says \"\"hi\"\", twice\",,lab;servers,TRUE\r\n"
      "\r\n"
      "DomainName,evil.example,2030-01-01T00:00:00Z,Audit,,\"multi\nline\",,,,true\n");
  ASSERT_TRUE(f.errors.empty()) << f.errors.front();
  ASSERT_EQ(f.indicators.size(), 2u);
  EXPECT_EQ(f.indicators[0],
            (json{{"indicatorType", "FileSha256"}, {"indicatorValue", "AAAA"}, {"action", "Block"},
                  {"severity", "High"}, {"title", "bad"}, {"description", "says \"hi\", twice"},
                  {"rbacGroupNames", {"lab", "servers"}}, {"generateAlert", "TRUE"}}));
  EXPECT_EQ(f.indicators[1]["title"], "multi\nline");
  EXPECT_EQ(f.indicators[1]["expirationTime"], "2030-01-01T00:00:00Z");
  EXPECT_EQ(f.lines, (std::vector<int>{2, 4}));
}

TEST(IndicatorCsvTest, ColumnsInAnyOrderAndCase) {
  IndicatorFile f = ParseIndicatorCsv("title,action,indicatorvalue,INDICATORTYPE\nt,Block,1.2.3.4,IpAddress\n");
  ASSERT_TRUE(f.errors.empty());
  EXPECT_EQ(f.indicators[0]["indicatorValue"], "1.2.3.4");
  EXPECT_EQ(f.indicators[0]["indicatorType"], "IpAddress");
}

TEST(IndicatorCsvTest, ErrorsNameTheLine) {
  EXPECT_EQ(ParseIndicatorCsv("IndicatorType,IndicatorValue,Colour,Action,Title\n").errors.at(0),
            "line 1: unknown column 'Colour' (columns: IndicatorType, IndicatorValue, "
            "ExpirationTime, Action, Severity, Title, Description, RecommendedActions, "
            "RbacGroups, GenerateAlert)");
  EXPECT_EQ(ParseIndicatorCsv("IndicatorType,IndicatorValue,Action\n").errors.at(0),
            "line 1: the header has no Title column");
  EXPECT_EQ(ParseIndicatorCsv("IndicatorType,IndicatorValue,Action,Title\n"
                              "IpAddress,1.2.3.4,Block,t\n"
                              "IpAddress,1.2.3.5,Block,t,extra\n")
                .errors.at(0),
            "line 3: 5 cells, but the header has 4 columns");
  EXPECT_EQ(ParseIndicatorCsv("IndicatorType,IndicatorValue,Action,Title\n"
                              "IpAddress,1.2.3.4,Block,\"open\n")
                .errors.at(0),
            "line 2: a quoted cell is not closed");
  EXPECT_EQ(ParseIndicatorCsv("").errors.at(0),
            "line 1: the file is empty; the first line must name the columns");
}

TEST(IndicatorFileTest, JsonInBothShapes) {
  IndicatorFile a = ParseIndicatorFile(R"({"Indicators":[{"indicatorValue":"x"}]})");
  ASSERT_TRUE(a.errors.empty());
  EXPECT_EQ(a.indicators.size(), 1u);
  IndicatorFile b = ParseIndicatorFile(R"(  [{"indicatorValue":"x"},{"indicatorValue":"y"}])");
  EXPECT_EQ(b.indicators.size(), 2u);
  EXPECT_EQ(ParseIndicatorFile(R"({"Things":[]})").errors.at(0),
            "a JSON file must be {\"Indicators\": [...]} or a list");
  EXPECT_EQ(ParseIndicatorFile("[1]").errors.at(0), "item 1: not a JSON object");
}

}  // namespace
}  // namespace quell::cli
