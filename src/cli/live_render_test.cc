#include "cli/live_render.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "cli/downloads.h"
#include "common/testing/temp_dir.h"

namespace quell::cli {
namespace {

using nlohmann::json;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(LiveRenderTest, DoneLines) {
  EXPECT_EQ(RenderDoneError(json::parse(R"({"type":"done","commandId":3,"status":"Completed"})")), "");
  EXPECT_EQ(RenderDoneError(json::parse(
                R"({"type":"done","commandId":3,"status":"Failed","error":"putfile needs the admin role"})")),
            "error: Failed: putfile needs the admin role");
  EXPECT_EQ(RenderDoneError(json::parse(R"({"type":"done","commandId":3,"status":"Cancelled","error":""})")),
            "error: Cancelled");
  EXPECT_EQ(RenderDoneError(json::parse(R"({"type":"done"})")), "error: ?");
}

TEST(LiveRenderTest, JobClosedErrorAndPrompt) {
  EXPECT_EQ(RenderJobLine(json::parse(R"({"type":"job","commandId":7,"status":"TimedOut"})")),
            "[7] TimedOut");
  EXPECT_EQ(RenderClosed(json::parse(R"j({"type":"closed","reason":"idle timeout (30 min)"})j")),
            "session closed: idle timeout (30 min)");
  EXPECT_EQ(RenderClosed(json::parse(R"({"type":"closed"})")), "session closed");
  EXPECT_EQ(RenderServerError(json::parse(R"({"type":"error","error":"command 3 is still running"})")),
            "error: command 3 is still running");
  EXPECT_EQ(RenderPrompt("web-1", "/var/log"), "web-1:/var/log$ ");
}

TEST(LiveRenderTest, BannerNamesMachineSessionAndTimeout) {
  std::string banner = RenderBanner(json::parse(
      R"({"type":"session","sessionId":"a1b2","machineId":"m-9","computerDnsName":"web-1",
          "idleTimeoutSeconds":1800,"cwd":"/","role":"Responder"})"));
  EXPECT_NE(banner.find("web-1"), std::string::npos);
  EXPECT_NE(banner.find("m-9"), std::string::npos);
  EXPECT_NE(banner.find("session a1b2"), std::string::npos);
  EXPECT_NE(banner.find("30 min"), std::string::npos);
  EXPECT_NE(banner.find("type help"), std::string::npos);
}

TEST(LiveRenderTest, SplitsLikeTheServer) {
  auto words = SplitCommandLine(R"(getfile "/tmp/a \"b\" c"  'x y'z)");
  ASSERT_TRUE(words);
  EXPECT_EQ(*words, (std::vector<std::string>{"getfile", "/tmp/a \"b\" c", "x yz"}));
  EXPECT_FALSE(SplitCommandLine("getfile 'open"));
  EXPECT_FALSE(SplitCommandLine("getfile \"open"));
}

TEST(LiveRenderTest, GetfilePath) {
  EXPECT_EQ(GetfilePath("getfile /etc/passwd"), "/etc/passwd");
  EXPECT_EQ(GetfilePath("getfile '/tmp/my file' &"), "/tmp/my file");
  EXPECT_EQ(GetfilePath("getfile -output json /var/log/syslog"), "/var/log/syslog");
  EXPECT_FALSE(GetfilePath("fileinfo /etc/passwd"));
  EXPECT_FALSE(GetfilePath("getfile"));
}

TEST(LiveRenderTest, SafeBaseNameKeepsOnlyTheLastComponent) {
  EXPECT_EQ(SafeBaseName("/etc/passwd"), "passwd");
  EXPECT_EQ(SafeBaseName("../../x"), "x");
  EXPECT_EQ(SafeBaseName("notes.txt"), "notes.txt");
  EXPECT_EQ(SafeBaseName("/var/log/"), "log");
  EXPECT_FALSE(SafeBaseName(""));
  EXPECT_FALSE(SafeBaseName("/"));
  EXPECT_FALSE(SafeBaseName("."));
  EXPECT_FALSE(SafeBaseName(".."));
  EXPECT_FALSE(SafeBaseName("/tmp/.."));
  EXPECT_FALSE(SafeBaseName("/tmp/a\nb"));
}

TEST(LiveRenderTest, ReserveNeverOverwrites) {
  testing::TempDir dir;
  { std::ofstream(dir / "passwd") << "mine"; }
  auto first = ReserveDownloadPath(dir.path(), "passwd");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, dir / "passwd.1");
  auto second = ReserveDownloadPath(dir.path(), "passwd");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, dir / "passwd.2");
  EXPECT_EQ(Slurp(dir / "passwd"), "mine");
  // A leftover "<name>.part" is skipped too: the download writes through it.
  { std::ofstream(dir / "syslog.part") << "other"; }
  auto third = ReserveDownloadPath(dir.path(), "syslog");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, dir / "syslog.1");
  EXPECT_EQ(Slurp(dir / "syslog.part"), "other");
  // Names that would leave the directory are refused.
  EXPECT_FALSE(ReserveDownloadPath(dir.path(), "../x").ok());
  EXPECT_FALSE(ReserveDownloadPath(dir.path(), "..").ok());
  EXPECT_FALSE(ReserveDownloadPath(dir.path(), "").ok());
}

TEST(LiveRenderTest, LinkTargetAndSizes) {
  EXPECT_EQ(LinkTarget("https://quell:8443/api/downloads/abc?sig=1"), "/api/downloads/abc?sig=1");
  EXPECT_EQ(LinkTarget("/api/downloads/abc"), "/api/downloads/abc");
  EXPECT_EQ(LinkTarget("https://quell"), "");
  EXPECT_EQ(HumanSize(512), "512 B");
  EXPECT_EQ(HumanSize(1536), "1.5 KiB");
  EXPECT_EQ(HumanSize(3u << 20), "3.0 MiB");
}

TEST(LiveRenderTest, EscapeControlsDefusesTerminalSequences) {
  EXPECT_EQ(EscapeControls("a\tb\n"), "a\tb\n");
  EXPECT_EQ(EscapeControls("evil\x1b]0;owned\x07name\r"), "evil\\x1b]0;owned\\x07name\\x0d");
  EXPECT_EQ(EscapeControls("csi\xc2\x9b" "2J"), "csi\\x9b" "2J");
  EXPECT_EQ(EscapeControls("caf\xc3\xa9 \xc2\xa0"), "caf\xc3\xa9 \xc2\xa0");  // text stays
}

}  // namespace
}  // namespace quell::cli
