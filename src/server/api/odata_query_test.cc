#include "server/api/odata_query.h"

#include <gtest/gtest.h>

namespace quell::server {
namespace {

const std::vector<std::string> kFields = {"status", "machineId", "type"};

TEST(ODataQueryTest, FilterTermsJoinedByAnd) {
  auto q = ParseODataQuery(
      {{"$filter", "status eq 'Pending' and machineId eq 'a''b'"}, {"$top", "5"}, {"$skip", "2"}},
      kFields, 10000);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  ASSERT_EQ(q->equals.size(), 2u);
  EXPECT_EQ(q->equals[0], (std::pair<std::string, std::string>{"status", "Pending"}));
  EXPECT_EQ(q->equals[1], (std::pair<std::string, std::string>{"machineId", "a'b"}));
  EXPECT_EQ(q->top, 5u);
  EXPECT_EQ(q->skip, 2u);
}

TEST(ODataQueryTest, NothingGivenIsFine) {
  auto q = ParseODataQuery({}, kFields, 10000);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->equals.empty());
  EXPECT_EQ(q->top, 0u);
}

TEST(ODataQueryTest, ErrorsSayWhatIsWrong) {
  struct Case {
    std::map<std::string, std::string> query;
    std::string mentions;
  };
  for (const Case& c : std::vector<Case>{
           {{{"$filter", "colour eq 'red'"}}, "unknown field 'colour'"},
           {{{"$filter", "status ne 'Pending'"}}, "only 'eq'"},
           {{{"$filter", "status eq Pending"}}, "quoted"},
           {{{"$filter", "status eq 'Pending"}}, "unterminated"},
           {{{"$filter", "status eq 'A' or type eq 'B'"}}, "only 'and'"},
           {{{"$filter", ""}}, "field name"},
           {{{"$top", "0"}}, "$top"},
           {{{"$top", "10001"}}, "$top"},
           {{{"$top", "-1"}}, "$top"},
           {{{"$skip", "x"}}, "$skip"},
           {{{"$orderby", "id"}}, "unsupported"},
       }) {
    auto q = ParseODataQuery(c.query, kFields, 10000);
    ASSERT_FALSE(q.ok()) << c.mentions;
    EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(q.status().message().find(c.mentions), std::string::npos) << q.status().message();
  }
}

TEST(ODataQueryTest, OrderByOneFieldWithDirection) {
  const std::vector<std::string> order = {"lastActivity", "severity"};
  auto q = ParseODataQuery({{"$orderby", "severity desc"}}, kFields, 10000, order);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  ASSERT_TRUE(q->order_by.has_value());
  EXPECT_EQ(q->order_by->field, "severity");
  EXPECT_TRUE(q->order_by->descending);

  q = ParseODataQuery({{"$orderby", "lastActivity"}}, kFields, 10000, order);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->order_by->field, "lastActivity");
  EXPECT_FALSE(q->order_by->descending);  // OData's default
  q = ParseODataQuery({{"$orderby", " lastActivity  asc "}}, kFields, 10000, order);
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->order_by->descending);

  EXPECT_FALSE(ParseODataQuery({}, kFields, 10000, order)->order_by.has_value());

  for (const char* bad : {"", "colour", "severity sideways", "severity desc extra",
                          "severity desc, lastActivity"}) {
    auto e = ParseODataQuery({{"$orderby", bad}}, kFields, 10000, order);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(e.status().message().find("$orderby"), std::string::npos) << e.status().message();
  }
}

}  // namespace
}  // namespace quell::server
