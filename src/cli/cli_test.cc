#include <gtest/gtest.h>

#include <map>

#include "cli/cli_config.h"
#include "cli/cli_context.h"
#include "cli/table.h"

namespace quell::cli {
namespace {

TEST(TableTest, PadsColumns) {
  EXPECT_EQ(RenderTable({"ID", "NAME"}, {{"1", "web-server"}, {"22", "db"}}),
            "ID  NAME\n"
            "1   web-server\n"
            "22  db\n");
}

TEST(ODataFilterTest, JoinsNonEmptyTermsQuotedAndEncoded) {
  EXPECT_EQ(ODataFilterParameter({{"status", ""}}), "");
  EXPECT_EQ(ODataFilterParameter({{"status", "Pending"}, {"type", ""}, {"machineId", "o'b"}}),
            "&$filter=status%20eq%20%27Pending%27%20and%20machineId%20eq%20%27o%27%27b%27");
}

struct FakeEnv {
  std::map<std::string, std::string> env, files;
  CliSettingsInputs Inputs() {
    return {.flag_server = "",
            .flag_token = "",
            .flag_ca = "",
            .getenv = [this](const char* n) -> std::optional<std::string> {
              auto it = env.find(n);
              if (it == env.end()) return std::nullopt;
              return it->second;
            },
            .read_file = [this](const std::string& p) -> Result<std::string> {
              auto it = files.find(p);
              if (it == files.end()) return NotFound(p);
              return it->second;
            },
            .home = "/home/u"};
  }
};

TEST(CliConfigTest, FlagsBeatEnvironmentBeatsFile) {
  FakeEnv e;
  e.files["var/cli.json"] = R"({"server":"https://file","token":"ft","ca":"var/ca.pem"})";
  e.env["QUELL_TOKEN"] = "et";
  CliSettingsInputs in = e.Inputs();
  in.flag_server = "https://flag";
  auto s = ResolveCliSettings(in);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->server, "https://flag");
  EXPECT_EQ(s->token, "et");
  EXPECT_EQ(s->ca_file, "var/ca.pem");
}

TEST(CliConfigTest, HomeConfigIsTheLastResort) {
  FakeEnv e;
  e.files["/home/u/.config/quell/cli.json"] = R"({"server":"https://h","token":"t"})";
  auto s = ResolveCliSettings(e.Inputs());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->server, "https://h");
  EXPECT_EQ(s->source, "/home/u/.config/quell/cli.json");
}

TEST(CliConfigTest, ExplicitConfigMustExist) {
  FakeEnv e;
  e.env["QUELL_CONFIG"] = "/etc/quell/cli.json";
  EXPECT_EQ(ResolveCliSettings(e.Inputs()).status().code(), StatusCode::kNotFound);
}

TEST(CliConfigTest, NothingConfiguredSaysWhereItLooked) {
  FakeEnv e;
  auto s = ResolveCliSettings(e.Inputs());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("var/cli.json"), std::string::npos);
}

}  // namespace
}  // namespace quell::cli
