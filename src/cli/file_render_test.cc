#include "cli/file_render.h"

#include <gtest/gtest.h>

namespace quell::cli {
namespace {

using nlohmann::json;

const std::string kSha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

// Where `needle` starts in `text`, failing the test when it is not there.
size_t At(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << "missing: " << needle << "\nin:\n" << text;
  return at;
}

TEST(FileArgumentsTest, VerdictsMapToDocumentedExitCodes) {
  EXPECT_EQ(VerdictExitCode("noThreatsFound"), 0);
  EXPECT_EQ(VerdictExitCode("suspicious"), 3);
  EXPECT_EQ(VerdictExitCode("malicious"), 4);
  EXPECT_EQ(VerdictExitCode(""), 1);  // unknown is never reported as clean
  EXPECT_EQ(VerdictExitCode("clean"), 1);
}

TEST(FileArgumentsTest, Sha256IsSixtyFourHexDigitsLowercased) {
  std::string upper = kSha;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(NormalizeSha256(upper), kSha);
  EXPECT_EQ(NormalizeSha256(kSha.substr(1)), std::nullopt);
  EXPECT_EQ(NormalizeSha256(kSha.substr(1) + "g"), std::nullopt);
  EXPECT_EQ(NormalizeSha256("../" + kSha.substr(3)), std::nullopt);
}

TEST(FileArgumentsTest, PasswordRulesAndMessagesWithoutThePassword) {
  EXPECT_TRUE(CheckZipPassword("12345678").ok());
  EXPECT_TRUE(CheckZipPassword(std::string(128, 'x')).ok());
  Status short_one = CheckZipPassword("hunter2");
  EXPECT_FALSE(short_one.ok());
  EXPECT_EQ(short_one.message().find("hunter2"), std::string::npos);
  EXPECT_NE(short_one.message().find("8 to 128"), std::string::npos);
  EXPECT_FALSE(CheckZipPassword(std::string(129, 'x')).ok());
  Status control = CheckZipPassword("secret\x1bpassword");
  EXPECT_FALSE(control.ok());
  EXPECT_EQ(control.message().find("secret"), std::string::npos);
}

TEST(FileArgumentsTest, PasswordFileHoldsOneLine) {
  EXPECT_EQ(*PasswordFromFile("correct horse\n"), "correct horse");
  EXPECT_EQ(*PasswordFromFile("correct horse\r\n"), "correct horse");
  EXPECT_EQ(*PasswordFromFile("no newline at all"), "no newline at all");
  Result<std::string> two = PasswordFromFile("first line\nsecond line\n");
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.status().message().find("first line"), std::string::npos);
}

TEST(FileArgumentsTest, CollectTakesAPathOrAHashNotBoth) {
  EXPECT_FALSE(CollectFileBody("", "", "c").ok());
  EXPECT_FALSE(CollectFileBody("/tmp/x", kSha, "c").ok());
  EXPECT_FALSE(CollectFileBody("tmp/x", "", "c").ok());  // relative: ambiguous on the device
  EXPECT_FALSE(CollectFileBody("", "abc", "c").ok());
  EXPECT_FALSE(CollectFileBody("/tmp/x", "", "").ok());
  EXPECT_EQ(*CollectFileBody("/tmp/x", "", "why"), (json{{"Comment", "why"}, {"Path", "/tmp/x"}}));
  std::string upper = kSha;
  upper[0] = 'F';
  EXPECT_EQ(*CollectFileBody("", upper, "why"),
            (json{{"Comment", "why"}, {"Sha256", "f" + kSha.substr(1)}}));
}

TEST(FileRenderTest, SuggestedZipNameIsSafeToPasteIntoAShell) {
  EXPECT_EQ(SuggestedZipName("evil.sh", kSha), "evil.sh.zip");
  EXPECT_EQ(SuggestedZipName("a+b_c-1.bin", kSha), "a+b_c-1.bin.zip");
  EXPECT_EQ(SuggestedZipName("$(rm -rf ~).sh", kSha), kSha + ".zip");
  EXPECT_EQ(SuggestedZipName("x;reboot", kSha), kSha + ".zip");
  EXPECT_EQ(SuggestedZipName("-rf", kSha), kSha + ".zip");  // would read as an option
  EXPECT_EQ(SuggestedZipName("..", kSha), kSha + ".zip");
  EXPECT_EQ(SuggestedZipName("", kSha), kSha + ".zip");
}

TEST(FileRenderTest, OneLineEscapesNewlinesAndTerminalControls) {
  EXPECT_EQ(OneLine("a\x1b[2Jb\nverdict: clean\tx\x7f"), "a\\x1b[2Jb\\x0averdict: clean\\x09x\\x7f");
  EXPECT_EQ(OneLine("caf\xc3\xa9"), "caf\xc3\xa9");  // UTF-8 text is kept
}

TEST(FileRenderTest, CollectedFileShowsHashesAndNextSteps) {
  json result = {{"Path", "/tmp/evil.sh"}, {"FileName", "evil.sh"}, {"Size", 2048},
                 {"Sha256", kSha}, {"Sha1", "x"}, {"Md5", "y"}, {"Artifact", "a"}};
  EXPECT_EQ(RenderCollectedFile(result),
            "collected /tmp/evil.sh\n"
            "  sha256: " + kSha + "\n"
            "  size:   2.0 KiB (2048 bytes)\n"
            "  name:   evil.sh\n"
            "next:\n"
            "  quell file download " + kSha + " -o evil.sh.zip --password-file <file>   (or "
            "--password, or be asked)\n"
            "  quell file analyze " + kSha + "\n");
}

TEST(FileRenderTest, CollectedFileFromAHostileDeviceIsEscaped) {
  json result = {{"Path", "/tmp/\x1b]0;pwned\x07"}, {"FileName", "$(reboot)"}, {"Size", 1},
                 {"Sha256", kSha}};
  const std::string out = RenderCollectedFile(result);
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.find('\x07'), std::string::npos);
  At(out, "collected /tmp/\\x1b]0;pwned\\x07\n");
  At(out, "-o " + kSha + ".zip");  // not "$(reboot).zip"
}

TEST(FileRenderTest, FileInfoOfACollectedFileSeenOnDevices) {
  json file = {{"sha256", kSha}, {"sha1", "s1"}, {"md5", "m5"}, {"size", 10}, {"fileName", "evil.sh"},
               {"collected", true}, {"firstCollected", "2026-11-27T10:00:00Z"},
               {"lastCollected", "2026-11-27T11:00:00Z"},
               {"collections", {{{"machineId", "m1"}, {"computerDnsName", "h1"},
                                 {"path", "/tmp/evil.sh"}, {"actionId", "a1"},
                                 {"requestor", "alice"}, {"collectedAt", "2026-11-27T10:00:00Z"}}}},
               {"seenOnDevices", 3},
               {"seenOn", {{{"machineId", "m1"}, {"computerDnsName", "h1\x1b[31m"},
                            {"filePath", "/tmp/evil.sh"}, {"lastSeen", "2026-11-27T09:00:00Z"}},
                           {{"machineId", "m2"}, {"computerDnsName", "h2"},
                            {"filePath", "/home/u/evil.sh"}, {"lastSeen", "2026-11-26T09:00:00Z"}}}},
               {"deepAnalysis", {{"id", "d1"}, {"status", "Succeeded"}, {"verdict", "malicious"},
                                 {"requested", "2026-11-27T12:00:00Z"}}}};
  const std::string out = RenderFileInfo(file);
  At(out, "sha256: " + kSha + "\n");
  At(out, "size:   10 B\n");
  At(out, "on the server: yes (first collected 2026-11-27T10:00:00Z, last 2026-11-27T11:00:00Z)\n");
  At(out, "collections (1):\n  MACHINE  PATH          COLLECTED             BY     ACTION\n"
          "  h1       /tmp/evil.sh  2026-11-27T10:00:00Z  alice  a1\n");
  At(out, "seen on 3 devices:\n");
  At(out, "h1\\x1b[31m");
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  At(out, "... and 1 more (quell file sightings " + kSha + ")\n");
  At(out, "deep analysis: Succeeded, verdict MALICIOUS (requested 2026-11-27T12:00:00Z, id d1)\n");
}

TEST(FileRenderTest, FileInfoOfAFileOnlySeenSaysHowToCollectIt) {
  json file = {{"sha256", kSha}, {"collected", false}, {"seenOnDevices", 0}, {"seenOn", json::array()}};
  const std::string out = RenderFileInfo(file);
  At(out, "size:   -\n");
  At(out, "on the server: no (quell file collect <machine> --sha256 " + kSha + ")\n");
  At(out, "seen on 0 devices\n");
  At(out, "deep analysis: none (quell file analyze " + kSha + ")\n");
}

TEST(FileRenderTest, ProgressShowsStatusAndStage) {
  EXPECT_EQ(RenderAnalysisProgress({{"status", "InProgress"}, {"stage", "collecting the sample from h1"}}),
            "InProgress: collecting the sample from h1");
  EXPECT_EQ(RenderAnalysisProgress({{"status", "Pending"}}), "Pending");
  EXPECT_EQ(RenderAnalysisProgress({{"status", "InProgress"}, {"stage", "a\nb"}}), "InProgress: a\\x0ab");
}

json SampleReport() {
  return {
      {"sample", {{"fileName", "evil.sh"}, {"size", 120}, {"sha256", kSha}, {"sha1", "s1"},
                  {"md5", "m5"}, {"kind", "shell"}}},
      {"verdict", "malicious"},
      {"verdictReasons", {"wrote /etc/cron.d/x (persistence)"}},
      {"behaviors",
       {{{"category", "process"}, {"severity", "informational"}, {"description", "started /bin/sh"},
         {"pid", 2}, {"atMs", 5}, {"details", json::object()}},
        {{"category", "persistence"}, {"severity", "high"},
         {"description", "wrote /etc/cron.d/x (persistence)"}, {"pid", 2}, {"atMs", 40},
         {"details", json::object()}},
        {{"category", "network"}, {"severity", "medium"}, {"description", "connected out to 203.0.113.5:443"},
         {"pid", 3}, {"atMs", 90}, {"details", json::object()}},
        {{"category", "odd"}, {"severity", "weird"}, {"description", "x\x1b[2J"}, {"pid", 0},
         {"atMs", 0}, {"details", json::object()}},
        {{"category", "file"}, {"severity", "low"}, {"description", "created /tmp/payload"},
         {"pid", 3}, {"atMs", 70}, {"details", json::object()}}}},
      {"observables",
       {{"domains", {"evil.example", "c2.example"}},
        {"ips", {"203.0.113.5"}},
        {"connections", {{{"address", "203.0.113.5"}, {"port", 443}, {"protocol", "tcp"},
                          {"domain", "c2.example"}, {"firstBytes", "GET / HTTP/1.1\\r\\n"},
                          {"firstBytesHex", "474554"}}}},
        {"droppedFiles", {{{"path", "/tmp/payload"}, {"size", 4096}, {"sha256", "ab12"},
                           {"executable", true}}}}}},
      {"processes", {{{"pid", 2}, {"parentPid", 1}, {"executable", "/bin/sh"},
                      {"argv", {"sh", "evil.sh"}}, {"exitCode", 0}, {"killedBy", nullptr}},
                     {{"pid", 3}, {"parentPid", 2}, {"executable", "/tmp/payload"},
                      {"argv", json::array()}, {"exitCode", nullptr}, {"killedBy", 9}}}},
      {"limits", {{"timedOut", true}, {"memoryLimitHit", false}, {"pidsLimitHit", false}}},
      {"startupMs", 30},
      {"durationMs", 1500},
      {"truncated", true}};
}

TEST(FileRenderTest, SummaryShowsVerdictBehavioursObservablesProcessesAndLimits) {
  json analysis = {{"id", "d1"}, {"sha256", kSha}, {"status", "Succeeded"}, {"requestor", "alice"},
                   {"requested", "2026-11-27T12:00:00Z"}, {"verdict", "malicious"},
                   {"report", SampleReport()}};
  const std::string out = RenderAnalysisSummary(analysis);
  EXPECT_EQ(out.rfind("verdict: MALICIOUS\n  - wrote /etc/cron.d/x (persistence)\n", 0), 0u) << out;
  At(out, "sample: evil.sh (shell, 120 B)\n  sha256: " + kSha + "\n");
  At(out, "analysis d1 requested by alice at 2026-11-27T12:00:00Z, ran 1500 ms\n");
  At(out, "behaviours (5):\n");
  // Worst first; a severity this CLI does not know comes last, not lost.
  const size_t high = At(out, "  high (1):\n    [persistence] wrote /etc/cron.d/x (persistence)  (pid 2, at 40 ms)\n");
  const size_t medium = At(out, "  medium (1):\n    [network] connected out to 203.0.113.5:443");
  const size_t low = At(out, "  low (1):\n    [file] created /tmp/payload");
  const size_t info = At(out, "  informational (1):\n    [process] started /bin/sh");
  const size_t weird = At(out, "  weird (1):\n    [odd] x\\x1b[2J\n");
  EXPECT_LT(high, medium);
  EXPECT_LT(medium, low);
  EXPECT_LT(low, info);
  EXPECT_LT(info, weird);
  At(out, "  domains: evil.example, c2.example\n  IPs: 203.0.113.5\n");
  At(out, "  connections:\n    tcp 203.0.113.5:443 (c2.example)\n      first bytes: \"GET / HTTP/1.1\\r\\n\"\n");
  At(out, "  dropped files:\n    PATH          SIZE                  EXECUTABLE  SHA-256\n"
          "    /tmp/payload  4.0 KiB (4096 bytes)  yes         ab12\n");
  At(out, "processes (2):\n  PID  PARENT  ENDED     COMMAND\n  2    1       exit 0    sh evil.sh\n"
          "  3    2       signal 9  /tmp/payload\n");
  At(out, "limits: timed out (the sample was stopped)\n");
  At(out, "note: the trace was truncated");
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
}

TEST(FileRenderTest, SummaryOfACleanRunAndAReportSentAsAString) {
  json report = {{"sample", {{"fileName", "hello.sh"}, {"size", 20}, {"sha256", kSha}, {"kind", "shell"}}},
                 {"verdict", "noThreatsFound"}, {"verdictReasons", json::array()},
                 {"behaviors", json::array()},
                 {"observables", {{"domains", json::array()}, {"ips", json::array()},
                                  {"connections", json::array()}, {"droppedFiles", json::array()}}},
                 {"processes", json::array()},
                 {"limits", {{"timedOut", false}, {"memoryLimitHit", false}, {"pidsLimitHit", false}}},
                 {"durationMs", 12}, {"truncated", false}};
  json analysis = {{"id", "d2"}, {"status", "Succeeded"}, {"report", report.dump()}};
  EXPECT_EQ(AnalysisReport(analysis), report);
  const std::string out = RenderAnalysisSummary(analysis);
  At(out, "verdict: no threats found\n\nsample: hello.sh (shell, 20 B)\n");
  At(out, "behaviours (0): none\n");
  At(out, "  domains: none\n  IPs: none\n  connections: none\n  dropped files: none\n");
  At(out, "processes (0): none\n");
  At(out, "limits: none hit\n");
  EXPECT_EQ(out.find("truncated"), std::string::npos);
}

TEST(FileRenderTest, SummaryWithoutAReportSaysSo) {
  json analysis = {{"id", "d3"}, {"sha256", kSha}, {"status", "Succeeded"}, {"verdict", "suspicious"}};
  EXPECT_TRUE(AnalysisReport(analysis).is_null());
  const std::string out = RenderAnalysisSummary(analysis);
  At(out, "verdict: SUSPICIOUS\n");
  At(out, "(the server returned no report)\n");
}

}  // namespace
}  // namespace quell::cli
