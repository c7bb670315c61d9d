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


json Command(const std::string& type, std::vector<std::pair<std::string, std::string>> params) {
  json list = json::array();
  for (auto& [k, v] : params) list.push_back({{"key", k}, {"value", v}});
  return {{"type", type}, {"params", list}};
}

TEST(ActionCatalogTest, LiveResponseTakesDefendersCommandsInOrder) {
  const ActionTypeSpec* live = FindActionRoute("runLiveResponse");
  ASSERT_NE(live, nullptr);
  auto parsed = live->parse_body(
      {{"Comment", "triage"},
       {"Commands",
        {Command("PutFile", {{"FileName", "tool.bin"}}),
         Command("RunScript", {{"ScriptName", "triage.sh"}, {"Args", "--since '2 days' -v"}}),
         Command("GetFile", {{"Path", "/var/log/syslog"}}),
         Command("GetFile", {{"Path", "/etc/hosts"}})}}});
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->min_role, Role::kAdmin);  // PutFile and RunScript
  EXPECT_EQ(parsed->library_files, (std::vector<std::string>{"tool.bin", "triage.sh"}));
  EXPECT_EQ(parsed->agent_parameters["Commands"].size(), 4u);
  EXPECT_EQ(parsed->agent_parameters["Commands"][1]["params"][1]["value"], "--since '2 days' -v");

  auto get_only = live->parse_body(
      {{"Comment", "c"}, {"Commands", {Command("GetFile", {{"Path", "/etc/hosts"}})}}});
  ASSERT_TRUE(get_only.ok());
  EXPECT_EQ(get_only->min_role, Role::kViewer);  // the type's own min_role (responder) applies
  EXPECT_TRUE(get_only->library_files.empty());
}

TEST(ActionCatalogTest, LiveResponseRefusesWhatCouldEscapeOrMisorder) {
  const ActionTypeSpec* live = FindActionType("LiveResponse");
  struct Case {
    json commands;
    std::string mentions;
  };
  for (const Case& c : {
           Case{json::array(), "Commands"},
           Case{{Command("GetFile", {{"Path", "/a"}}), Command("PutFile", {{"FileName", "x"}})},
                "order"},
           Case{{Command("PutFile", {{"FileName", "../etc/passwd"}})}, "library file"},
           Case{{Command("PutFile", {{"FileName", ".hidden"}})}, "library file"},
           Case{{Command("RunScript", {{"ScriptName", "a.sh"}, {"Args", "x; rm -rf /"}})}, "';'"},
           Case{{Command("RunScript", {{"ScriptName", "a.sh"}, {"Args", "$(id)"}})}, "'$'"},
           Case{{Command("RunScript", {{"ScriptName", "a.sh"}, {"Args", "a\nb"}})}, "line breaks"},
           Case{{Command("RunScript", {{"ScriptName", "a.sh"}, {"Args", "a | b"}})}, "'|'"},
           Case{{Command("GetFile", {{"Path", "relative/path"}})}, "absolute"},
           Case{{Command("GetFile", {{"Path", "/a"}, {"Path", "/b"}})}, "repeated"},
           Case{{Command("Format", {})}, "PutFile, RunScript or GetFile"},
       }) {
    auto parsed = live->parse_body({{"Comment", "c"}, {"Commands", c.commands}});
    ASSERT_FALSE(parsed.ok()) << c.commands.dump();
    EXPECT_NE(parsed.status().message().find(c.mentions), std::string::npos)
        << parsed.status().message();
  }
}

}  // namespace
}  // namespace quell::server
