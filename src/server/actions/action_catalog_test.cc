#include "server/actions/action_catalog.h"

#include <gtest/gtest.h>

namespace quell::server {
namespace {

using nlohmann::json;

TEST(ActionCatalogTest, RoutesAreCaseInsensitive) {
  ASSERT_NE(FindActionRoute("isolate"), nullptr);
  EXPECT_EQ(FindActionRoute("Isolate"), FindActionRoute("isolate"));
  EXPECT_EQ(FindActionRoute("UNISOLATE")->type, "Unisolate");
  EXPECT_EQ(FindActionRoute("nope"), nullptr);
}

TEST(ActionCatalogTest, IsolateDefaultsToFull) {
  auto parsed = FindActionType("Isolate")->parse_body(json{{"Comment", "c"}});
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->scope, "Full");
  EXPECT_EQ(parsed->agent_parameters, (json{{"IsolationType", "Full"}}));
}

TEST(ActionCatalogTest, IsolateSelective) {
  auto parsed = FindActionType("Isolate")->parse_body(
      json{{"Comment", "c"}, {"IsolationType", "Selective"}});
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->scope, "Selective");
}

TEST(ActionCatalogTest, ScanNeedsAScanType) {
  const ActionTypeSpec* scan = FindActionType("RunAntiVirusScan");
  auto full = scan->parse_body(json{{"Comment", "c"}, {"ScanType", "Full"}});
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->scope, "Full");
  EXPECT_EQ(full->agent_parameters, (json{{"ScanType", "Full"}}));
  EXPECT_FALSE(scan->parse_body(json{{"Comment", "c"}}).ok());
  EXPECT_FALSE(scan->parse_body(json{{"Comment", "c"}, {"ScanType", "Deep"}}).ok());
  EXPECT_EQ(FindActionRoute("restrictcodeexecution")->undo_type, "UnrestrictCodeExecution");
}

TEST(ActionCatalogTest, BadBodiesAreExplained) {
  const ActionTypeSpec* isolate = FindActionType("Isolate");
  struct Case {
    json body;
    std::string mentions;
  };
  for (const Case& c : {
           Case{json::object(), "Comment"},
           Case{json{{"Comment", ""}}, "Comment"},
           Case{json{{"Comment", 5}}, "Comment"},
           Case{json{{"Comment", "c"}, {"IsolationType", "Partial"}}, "Partial"},
           Case{json{{"Comment", "c"}, {"IsolationType", 1}}, "IsolationType"},
           Case{json{{"Comment", "c"}, {"Colour", "red"}}, "Colour"},
           Case{json{{"Comment", std::string(5000, 'x')}}, "longer"},
       }) {
    auto parsed = isolate->parse_body(c.body);
    ASSERT_FALSE(parsed.ok()) << c.body.dump();
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.mentions), std::string::npos)
        << parsed.status().message();
  }
}

TEST(ActionCatalogTest, DescribesEveryTypeAsData) {
  for (const ActionTypeSpec& spec : ActionCatalog()) {
    json d = DescribeActionType(spec);
    EXPECT_EQ(d["type"], spec.type);
    EXPECT_EQ(d["bodySchema"]["required"][0], "Comment");
  }
  EXPECT_EQ(DescribeActionType(*FindActionType("Isolate"))["undoType"], "Unisolate");
}

}  // namespace
}  // namespace quell::server
