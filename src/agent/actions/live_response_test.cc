#include "agent/actions/live_response.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <future>
#include <thread>

#include "agent/actions/builtin_actions.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace std::chrono_literals;

Json Cmd(const std::string& type, std::vector<std::pair<std::string, std::string>> params) {
  Json p = Json::array();
  for (auto& [k, v] : params) p.push_back({{"key", k}, {"value", v}});
  return {{"type", type}, {"params", p}};
}

unsigned Mode(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

class LiveResponseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(dir_ / "library").ok());
    ASSERT_TRUE(MakeDirs(dir_ / "server").ok());
  }

  // Puts a file into the server's library; its entry goes into the parameters' "Library".
  void AddLibrary(const std::string& name, const std::string& content) {
    ASSERT_TRUE(WriteFileAtomic(dir_ / ("library/" + name), content).ok());
    library_[name] = {{"sha256", Sha256Hex(content)}, {"size", content.size()}};
  }

  Json Params(Json commands) {
    return {{"Comment", "triage"}, {"Commands", std::move(commands)}, {"Library", library_}};
  }

  // "Uploads" by copying into dir_/server/<artifact name>, as the server would store it.
  ArtifactSender Sender() {
    return [this](const std::string& action_id, const std::string& name, const std::string& path,
                  std::stop_token, const std::function<void(uint64_t, uint64_t)>& progress)
               -> Result<SentArtifact> {
      EXPECT_EQ(action_id, "act-1");
      QUELL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
      QUELL_RETURN_IF_ERROR(WriteFileAtomic(dir_ / ("server/" + name), bytes));
      progress(bytes.size(), bytes.size());
      sent_.push_back(name);
      return SentArtifact{Sha256Hex(bytes), bytes.size()};
    };
  }

  // Serves dir_/library by digest, as FetchLibraryFile does: written beside, checked, renamed.
  LibraryFetcher Fetcher() {
    return [this](const std::string&, const std::string& name, const std::string& sha256,
                  const std::string& dest, std::stop_token) -> Status {
      QUELL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(dir_ / ("library/" + name)));
      bytes += tamper_;
      if (!tamper_.empty() && lie_about_digest_) {
        QUELL_RETURN_IF_ERROR(WriteFileAtomic(dest, bytes));
        return Status::Ok();
      }
      if (Sha256Hex(bytes) != sha256) {
        return FailedPrecondition("digest mismatch: got " + Sha256Hex(bytes));
      }
      return WriteFileAtomic(dest, bytes);
    };
  }

  LiveResponseOptions Options() {
    return {.work_dir = dir_ / "live", .script_timeout = 10s, .max_output_bytes = 1 << 20,
            .max_get_file_bytes = 1 << 20};
  }

  LiveResponseOutcome RunAll(Json params, LiveResponseOptions options) {
    LiveResponseAction action(options, Sender(), Fetcher(), clock_);
    EXPECT_TRUE(action.Validate(params).ok()) << action.Validate(params).ToString();
    ActionContext ctx{.action_id = "act-1", .parameters = std::move(params),
                      .report_progress = [this](uint32_t p, const std::string& m) {
                        progress_.emplace_back(p, m);
                      }};
    return action.RunCommands(ctx);
  }
  LiveResponseOutcome RunAll(Json params) { return RunAll(std::move(params), Options()); }

  std::string Server(const std::string& name) { return ReadFile(dir_ / ("server/" + name)).value(); }

  testing::TempDir dir_;
  FakeClock clock_;
  Json library_ = Json::object();
  std::vector<std::string> sent_;
  std::vector<std::pair<uint32_t, std::string>> progress_;
  std::string tamper_;
  bool lie_about_digest_ = false;
};

TEST_F(LiveResponseTest, PutFileThenRunScriptThatReadsItWithQuotedArgs) {
  AddLibrary("data.txt", "secret-data\n");
  AddLibrary("show.sh",
             "#!/bin/sh\ncat data.txt\nfor a in \"$@\"; do echo \"[$a]\"; done\n"
             "echo oops >&2\nexit 2\n");
  auto out = RunAll(Params({Cmd("PutFile", {{"FileName", "data.txt"}}),
                            Cmd("RunScript", {{"ScriptName", "show.sh"},
                                              {"Args", "one 'two  words' \"x'y\""}})}));
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  const Json& cmds = out.result["commands"];
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[0]["index"], 0);
  EXPECT_EQ(cmds[0]["type"], "PutFile");
  EXPECT_EQ(cmds[0]["commandStatus"], "Completed");
  EXPECT_EQ(cmds[0]["startTime"], FormatIso8601(clock_.Now()));
  EXPECT_EQ(cmds[0]["errors"], Json::array());
  EXPECT_FALSE(cmds[0].contains("artifact"));
  EXPECT_EQ(cmds[0]["details"]["sha256"], Sha256Hex("secret-data\n"));
  EXPECT_EQ(Mode(dir_ / "live/files/data.txt"), 0600u);
  EXPECT_EQ(Mode(dir_ / "live/scripts/show.sh"), 0700u);

  // A non-zero exit code is the script's answer, not a failure of the command (as Defender).
  EXPECT_EQ(cmds[1]["commandStatus"], "Completed");
  EXPECT_EQ(cmds[1]["artifact"], "command-1.json");
  const std::string expected_output = "secret-data\n[one]\n[two  words]\n[x'y]\n";
  EXPECT_EQ(cmds[1]["details"]["exit_code"], 2);
  EXPECT_EQ(cmds[1]["details"]["script_output"], expected_output);
  const Json report = Json::parse(Server("command-1.json"));
  EXPECT_EQ(report, (Json{{"script_name", "show.sh"},
                          {"exit_code", 2},
                          {"script_output", expected_output},
                          {"script_errors", "oops\n"}}));
  EXPECT_EQ(sent_, std::vector<std::string>{"command-1.json"});
  EXPECT_TRUE(fs::is_empty(dir_ / "live/out"));  // staged output removed

  ASSERT_GE(progress_.size(), 2u);
  EXPECT_EQ(progress_[0], std::make_pair(0u, std::string("command 0 (PutFile data.txt)")));
  EXPECT_TRUE(std::is_sorted(progress_.begin(), progress_.end(),
                             [](auto& a, auto& b) { return a.first < b.first; }));
}

TEST_F(LiveResponseTest, GetFileUploadsTheFilesBytes) {
  std::string content;
  for (int i = 0; i < 70000; ++i) content += static_cast<char>(i * 7);
  ASSERT_TRUE(WriteFileAtomic(dir_ / "evidence.bin", content).ok());
  auto out = RunAll(Params({Cmd("GetFile", {{"Path", dir_ / "evidence.bin"}}),
                            Cmd("GetFile", {{"Path", dir_.path() + "/./x/../evidence.bin"}})}));
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  const Json& cmds = out.result["commands"];
  EXPECT_EQ(cmds[0]["artifact"], "command-0");
  EXPECT_EQ(cmds[1]["artifact"], "command-1");
  EXPECT_EQ(Server("command-0"), content);
  EXPECT_EQ(Server("command-1"), content);
  EXPECT_EQ(cmds[1]["details"]["path"], dir_ / "evidence.bin");
  EXPECT_EQ(cmds[0]["details"]["size"], content.size());
  EXPECT_EQ(cmds[0]["details"]["sha256"], Sha256Hex(content));
}

TEST_F(LiveResponseTest, ARefusedGetFileFailsAndLeavesTheRestCreated) {
  ASSERT_TRUE(WriteFileAtomic(dir_ / "ok.txt", "ok").ok());
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  ASSERT_EQ(::symlink((dir_ / "b").c_str(), (dir_ / "a").c_str()), 0);
  ASSERT_EQ(::symlink((dir_ / "a").c_str(), (dir_ / "b").c_str()), 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir_ / "fifo", "is a fifo"},
      {"/proc/self/status", "refused: /proc, /sys and /dev are not collected"},
      {dir_ / "a", "symbolic link loop"},
      {dir_ / "missing", "no such file"},
  };
  for (const auto& [path, why] : cases) {
    sent_.clear();
    LiveResponseAction action(Options(), Sender(), Fetcher(), clock_);
    ActionContext ctx{.action_id = "act-1",
                      .parameters = Params({Cmd("GetFile", {{"Path", dir_ / "ok.txt"}}),
                                            Cmd("GetFile", {{"Path", path}}),
                                            Cmd("GetFile", {{"Path", dir_ / "ok.txt"}})})};
    auto out = action.RunCommands(ctx);
    const Json& cmds = out.result["commands"];
    EXPECT_EQ(cmds[0]["commandStatus"], "Completed") << path;
    EXPECT_EQ(cmds[1]["commandStatus"], "Failed") << path;
    EXPECT_EQ(cmds[1]["errors"], Json::array({why})) << path;
    EXPECT_FALSE(cmds[1].contains("artifact"));
    EXPECT_FALSE(cmds[1]["endTime"].is_null());
    EXPECT_EQ(cmds[2]["commandStatus"], "Created") << path;
    EXPECT_TRUE(cmds[2]["startTime"].is_null());
    EXPECT_EQ(sent_, std::vector<std::string>{"command-0"}) << path;
    EXPECT_EQ(out.status.message(), "command 1 (GetFile " + path + ") failed: " + why);

    // Run reports the same failure as the action's status.
    auto run = action.Run(ctx);
    EXPECT_FALSE(run.ok());
    EXPECT_EQ(run.status().message(), out.status.message());
  }
}

TEST_F(LiveResponseTest, ValidateRefusesMalformedRequests) {
  AddLibrary("s.sh", "#!/bin/sh\n");
  AddLibrary("f.txt", "x");
  LiveResponseAction action(Options(), Sender(), Fetcher(), clock_);
  auto refusal = [&](Json params) {
    Status s = action.Validate(params);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << params.dump();
    return s.message();
  };
  EXPECT_TRUE(action.Validate(Params({Cmd("PutFile", {{"FileName", "f.txt"}}),
                                      Cmd("RunScript", {{"ScriptName", "s.sh"}, {"Args", "-v"}}),
                                      Cmd("GetFile", {{"Path", "/etc/hosts"}})}))
                  .ok());
  EXPECT_EQ(refusal(Params({Cmd("RunScript", {{"ScriptName", "s.sh"}, {"Args", "a; rm -rf /"}})})),
            "LiveResponse: Commands[0]: Args may not contain ';'");
  EXPECT_EQ(refusal(Params({Cmd("GetFile", {{"Path", "/etc/hosts"}}),
                            Cmd("PutFile", {{"FileName", "f.txt"}})})),
            "LiveResponse: Commands[1]: PutFile after a later kind; the order is PutFile, "
            "RunScript, GetFile");
  EXPECT_EQ(refusal(Params({Cmd("RunScript", {{"ScriptName", "other.sh"}})})),
            "LiveResponse: Library has no entry for 'other.sh'");
  EXPECT_EQ(refusal(Params({Cmd("GetFile", {{"Path", "etc/hosts"}})})),
            "LiveResponse: Commands[0]: Path must be absolute");
  EXPECT_EQ(refusal(Params({Cmd("GetFile", {{"Path", "/a"}, {"Args", "x"}})})),
            "LiveResponse: Commands[0]: GetFile does not take parameter 'Args'");
  EXPECT_EQ(refusal(Params({Cmd("PutFile", {{"FileName", "../f.txt"}})})),
            "LiveResponse: Commands[0]: '../f.txt' is not a library file name");
  EXPECT_EQ(refusal(Params({Cmd("Shell", {{"Path", "/a"}})})),
            "LiveResponse: Commands[0]: type must be PutFile, RunScript or GetFile, not 'Shell'");
  EXPECT_EQ(refusal(Params(Json::array())),
            "LiveResponse: Commands must be a list of 1 to 20 commands");
  Json many = Json::array();
  for (int i = 0; i < 21; ++i) many.push_back(Cmd("GetFile", {{"Path", "/a"}}));
  refusal(Params(many));
  Json bad_digest = Params({Cmd("PutFile", {{"FileName", "f.txt"}})});
  bad_digest["Library"]["f.txt"]["sha256"] = "ABC";
  refusal(bad_digest);
  refusal({{"Commands", Params({})["Commands"]}, {"Shell", "x"}});
}

TEST_F(LiveResponseTest, AScriptPastItsTimeLimitFailsWithItsOutputSoFar) {
  AddLibrary("hang.sh", "#!/bin/sh\necho begun\nsleep 60\n");
  AddLibrary("never.sh", "#!/bin/sh\n");
  auto options = Options();
  options.script_timeout = 300ms;
  const auto start = std::chrono::steady_clock::now();
  auto out = RunAll(Params({Cmd("RunScript", {{"ScriptName", "hang.sh"}}),
                            Cmd("RunScript", {{"ScriptName", "never.sh"}})}),
                    options);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(out.status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(out.status.message(), "command 0 (RunScript hang.sh) failed: timed out after 0.3 s");
  const Json& cmds = out.result["commands"];
  EXPECT_EQ(cmds[0]["commandStatus"], "Failed");
  EXPECT_EQ(cmds[0]["errors"], Json::array({"timed out after 0.3 s"}));
  EXPECT_EQ(cmds[0]["artifact"], "command-0.json");
  EXPECT_EQ(Json::parse(Server("command-0.json"))["script_output"], "begun\n");
  EXPECT_EQ(cmds[1]["commandStatus"], "Created");
}

TEST_F(LiveResponseTest, ALibraryFileThatDoesNotMatchItsDigestIsNeverUsed) {
  AddLibrary("tool.sh", "#!/bin/sh\necho ran > ran.txt\n");
  tamper_ = "echo evil\n";  // the server's copy changed after the action was created
  auto out = RunAll(Params({Cmd("RunScript", {{"ScriptName", "tool.sh"}}),
                            Cmd("GetFile", {{"Path", "/etc/hostname"}})}));
  const Json& cmds = out.result["commands"];
  EXPECT_EQ(cmds[0]["commandStatus"], "Failed");
  ASSERT_EQ(cmds[0]["errors"].size(), 1u);
  EXPECT_TRUE(cmds[0]["errors"][0].get<std::string>().starts_with(
      "fetch library file 'tool.sh': digest mismatch"))
      << cmds[0]["errors"];
  EXPECT_EQ(cmds[1]["commandStatus"], "Created");
  EXPECT_FALSE(fs::exists(dir_ / "live/files/ran.txt"));

  // A fetcher that claims success for the wrong bytes is caught by the agent's own check.
  lie_about_digest_ = true;
  out = RunAll(Params({Cmd("RunScript", {{"ScriptName", "tool.sh"}})}));
  EXPECT_EQ(out.result["commands"][0]["commandStatus"], "Failed");
  EXPECT_NE(out.status.message().find("'tool.sh' does not match the library"), std::string::npos)
      << out.status.message();
  EXPECT_FALSE(fs::exists(dir_ / "live/scripts/tool.sh"));
  EXPECT_FALSE(fs::exists(dir_ / "live/files/ran.txt"));
}

TEST_F(LiveResponseTest, OutputIsCappedMarkedAndMadeValidUtf8) {
  AddLibrary("loud.sh", "#!/bin/sh\nprintf 'caf\\303\\251 \\377'\nhead -c 5000 /dev/zero | tr '\\0' y\n");
  auto options = Options();
  options.max_output_bytes = 2000;
  auto out = RunAll(Params({Cmd("RunScript", {{"ScriptName", "loud.sh"}})}), options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  const Json report = Json::parse(Server("command-0.json"));
  const std::string text = report["script_output"];
  EXPECT_TRUE(text.starts_with("caf\xC3\xA9 \xEF\xBF\xBDy"));
  EXPECT_TRUE(text.ends_with("y\n[truncated]"));
  EXPECT_EQ(out.result["commands"][0]["details"]["output_truncated"], true);
  EXPECT_NO_THROW(out.result.dump());  // what the executor does with it
}

TEST_F(LiveResponseTest, CancelKillsTheScriptAndStopsTheRest) {
  AddLibrary("hang.sh", "#!/bin/sh\nsleep 60\n");
  LiveResponseAction action(Options(), Sender(), Fetcher(), clock_);
  std::stop_source stop;
  ActionContext ctx{.action_id = "act-1",
                    .parameters = Params({Cmd("RunScript", {{"ScriptName", "hang.sh"}}),
                                          Cmd("GetFile", {{"Path", "/etc/hostname"}})}),
                    .stop = stop.get_token()};
  std::jthread canceller([&] {
    std::this_thread::sleep_for(300ms);
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  auto out = action.RunCommands(ctx);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(out.status.code(), StatusCode::kCancelled);
  EXPECT_EQ(out.result["commands"][0]["commandStatus"], "Failed");
  EXPECT_EQ(out.result["commands"][0]["errors"], Json::array({"cancelled"}));
  EXPECT_EQ(out.result["commands"][1]["commandStatus"], "Created");
  EXPECT_TRUE(sent_.empty());
}

class NullSink final : public MessageSink {
 public:
  void Send(quell::v1::AgentMessage message) override {
    std::lock_guard lock(mu);
    messages.push_back(std::move(message));
  }
  Status SendDurable(quell::v1::AgentMessage) override { return Status::Ok(); }
  std::mutex mu;
  std::vector<quell::v1::AgentMessage> messages;
};

TEST_F(LiveResponseTest, InteractiveSessionLastsUntilTheServerEndsIt) {
  live::LiveSessionHost host(live::LiveShellOptions{.work_dir = dir_ / "live"});
  NullSink sink;
  host.AttachSink(&sink);
  LiveResponseAction action(Options(), Sender(), Fetcher(), clock_, &host);
  const Json params = {{"Interactive", true}, {"Comment", "triage"}};
  ASSERT_TRUE(action.Validate(params).ok()) << action.Validate(params).ToString();
  EXPECT_FALSE(action.Validate({{"Interactive", true}, {"Commands", Json::array()}}).ok());
  EXPECT_FALSE(action.Validate({{"Interactive", false}}).ok());

  std::promise<void> opened;
  ActionContext ctx{.action_id = "act-9", .parameters = params,
                    .report_progress = [&](uint32_t, const std::string& m) {
                      if (m == "session open") opened.set_value();
                    }};
  auto run = std::async(std::launch::async, [&] { return action.Run(ctx); });
  ASSERT_EQ(opened.get_future().wait_for(5s), std::future_status::ready);
  quell::v1::LiveCommand pwd;
  pwd.set_session_id("act-9");
  pwd.set_command_id(1);
  pwd.add_argv("pwd");
  host.OnCommand(pwd);
  EXPECT_EQ(run.wait_for(200ms), std::future_status::timeout);  // still open
  quell::v1::LiveCancel end;
  end.set_session_id("act-9");
  host.OnCancel(end);
  ASSERT_EQ(run.wait_for(5s), std::future_status::ready);
  Result<Json> result = run.get();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(*result, (Json{{"commands", 1}}));
}

TEST_F(LiveResponseTest, InteractiveSessionEndsCancelledWhenTheActionIsCancelled) {
  live::LiveSessionHost host(live::LiveShellOptions{.work_dir = dir_ / "live"});
  LiveResponseAction action(Options(), Sender(), Fetcher(), clock_, &host);
  std::stop_source stop;
  std::promise<void> opened;
  ActionContext ctx{.action_id = "act-9", .parameters = {{"Interactive", true}},
                    .report_progress = [&](uint32_t, const std::string&) { opened.set_value(); },
                    .stop = stop.get_token()};
  auto run = std::async(std::launch::async, [&] { return action.Run(ctx); });
  ASSERT_EQ(opened.get_future().wait_for(5s), std::future_status::ready);
  stop.request_stop();
  ASSERT_EQ(run.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(run.get().status().code(), StatusCode::kCancelled);
  EXPECT_EQ(host.open_sessions(), 0u);

  LiveResponseAction without(Options(), Sender(), Fetcher(), clock_);
  ActionContext ctx2{.action_id = "act-10", .parameters = {{"Interactive", true}}};
  EXPECT_EQ(without.Run(ctx2).status().code(), StatusCode::kFailedPrecondition);
}

TEST(PrepareLiveWorkDirTest, EmptiesFilesAndScriptsAndKeepsTheRest) {
  testing::TempDir dir;
  const std::string work = dir / "live";
  ASSERT_TRUE(PrepareLiveWorkDir(work).ok());  // creates it
  EXPECT_TRUE(fs::is_empty(work + "/files"));
  EXPECT_EQ(Mode(work), 0700u);
  EXPECT_EQ(Mode(work + "/scripts"), 0700u);

  ASSERT_TRUE(WriteFileAtomic(work + "/files/put.bin", "x").ok());
  ASSERT_TRUE(MakeDirs(work + "/files/sub").ok());
  ASSERT_TRUE(WriteFileAtomic(work + "/files/sub/made-by-script", "x").ok());
  ASSERT_TRUE(WriteFileAtomic(work + "/scripts/s.sh", "x").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "outside", "keep").ok());
  ASSERT_EQ(::symlink((dir / "outside").c_str(), (work + "/files/link").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(work + "/other", "keep").ok());

  ASSERT_TRUE(WriteFileAtomic(work + "/kept/tool.bin", "kept").ok());
  ASSERT_TRUE(WriteFileAtomic(work + "/kept/remediations.json", "{}").ok());
  ASSERT_TRUE(PrepareLiveWorkDir(work).ok());
  EXPECT_TRUE(fs::is_empty(work + "/files"));
  EXPECT_TRUE(fs::is_empty(work + "/scripts"));
  EXPECT_EQ(ReadFile(work + "/kept/tool.bin").value(), "kept");  // putfile -keep survives
  EXPECT_EQ(ReadFile(work + "/kept/remediations.json").value(), "{}");
  EXPECT_EQ(ReadFile(dir / "outside").value(), "keep");  // the link removed, not followed
  EXPECT_EQ(ReadFile(work + "/other").value(), "keep");
}

TEST(LiveResponseRegistrationTest, OfferedOnlyWithOptionsSenderAndFetcher) {
  LiveResponseOptions options{.work_dir = "/nonexistent"};
  ArtifactSender send = [](const std::string&, const std::string&, const std::string&,
                           std::stop_token, const std::function<void(uint64_t, uint64_t)>&)
      -> Result<SentArtifact> { return Unavailable("x"); };
  LibraryFetcher fetch = [](const std::string&, const std::string&, const std::string&,
                            const std::string&, std::stop_token) { return Unavailable("x"); };
  ActionRegistry with, without;
  RegisterBuiltinActions(with, {.send_artifact = send, .live = &options, .fetch_library = fetch});
  RegisterBuiltinActions(without, {.send_artifact = send, .live = &options});
  EXPECT_TRUE(with.Find("LiveResponse").ok());
  EXPECT_FALSE(without.Find("LiveResponse").ok());
}

}  // namespace
}  // namespace quell::agent
