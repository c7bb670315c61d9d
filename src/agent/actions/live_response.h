// LiveResponse (API form): runs a short list of commands on the device, in order, and reports
// each one's status (docs/api.md, "Live response").
//
//   PutFile   FileName        library file -> <work_dir>/files/<FileName> (0600), replacing it
//   RunScript ScriptName Args library script -> <work_dir>/scripts/<name> (0700), run from
//                             files/ (live/script_runner.h); its output is uploaded as
//                             "command-<i>.json" {script_name, exit_code, script_output,
//                             script_errors}
//   GetFile   Path            the file (live/safe_paths.h rules) uploaded as "command-<i>"
//
// Library files come through LibraryFetcher by the sha256 the server resolved at creation
// ("Library" in the parameters) and are hashed again here before use. The first command that
// fails stops the rest (they stay "Created"). One LiveResponse at a time per agent.
//
// Interactive form: parameters {"Interactive": true} (optionally "Comment") open an interactive
// session (live/live_session_host.h) that lasts while the action runs: progress "session
// open", then Succeeded {"commands": N} once the server ends it (LiveCancel command_id 0), or
// Cancelled when the action is cancelled (running commands are cancelled first).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent/actions/action.h"
#include "agent/actions/artifact_sender.h"
#include "agent/live/live_session_host.h"
#include "common/clock.h"

namespace quell::agent {

struct LiveResponseOptions {
  std::string work_dir;  // <state_dir>/live; files/, scripts/ and out/ are made below it
  std::chrono::milliseconds script_timeout{600'000};  // then the script's group gets SIGKILL
  uint64_t max_output_bytes = 16ull << 20;            // per stream of a script
  uint64_t max_get_file_bytes = 3ull << 30;
};

// Empties (or creates) <work_dir>/files, <work_dir>/scripts and <work_dir>/out, mode 0700,
// and creates <work_dir>/kept without emptying it (putfile -keep, the remediation journal).
// Called once at agent start: files put on the device do not outlive the agent (as Defender's
// are deleted on restart). REQUIRES: no LiveResponse is running.
Status PrepareLiveWorkDir(const std::string& work_dir);

// One command of the request, as parsed and validated.
struct LiveCommand {
  std::string type;                           // "PutFile" | "RunScript" | "GetFile"
  std::map<std::string, std::string> params;  // key -> value
};

struct LiveLibraryEntry {
  std::string sha256;  // lowercase hex
  uint64_t size = 0;
};

struct LiveResponseRequest {
  std::vector<LiveCommand> commands;
  std::map<std::string, LiveLibraryEntry> library;  // by file name
};

// Parses and checks the parameters: 1-20 Commands in the order PutFile* RunScript* GetFile*,
// the keys each type takes (PutFile FileName; RunScript ScriptName, optional Args; GetFile
// Path), library names, Args (live/script_args.h), absolute paths of at most 4096 characters,
// and a Library entry {sha256, size} for every file named. InvalidArgument says what is wrong.
Result<LiveResponseRequest> ParseLiveResponseParameters(const nlohmann::json& parameters);

// True for the interactive form {"Interactive": true[, "Comment": ...]}; InvalidArgument when
// "Interactive" is there but the rest is not that form.
Result<bool> IsInteractiveLiveResponse(const nlohmann::json& parameters);

// What a run produced: the result JSON (always, per-command statuses included) and whether
// every command completed (ok) or which one did not.
struct LiveResponseOutcome {
  nlohmann::json result;
  Status status;
};

class LiveResponseAction final : public Action {
 public:
  // `send` and `fetch` are called on the action's thread; `clock` (for the command times)
  // must outlive the action. Thread-safe: a second run while one is going fails with
  // FailedPrecondition. `sessions` (nullptr: the interactive form fails) must outlive it.
  LiveResponseAction(LiveResponseOptions options, ArtifactSender send, LibraryFetcher fetch,
                     const Clock& clock = SystemClock::Instance(),
                     live::LiveSessionHost* sessions = nullptr);

  const ActionSpec& Spec() const override;
  Status Validate(const nlohmann::json& parameters) const override;
  // Succeeds with {"commands": [...]} when every command completed. Otherwise fails with
  // "command <i> (<type> <argument>) failed: <reason>" (Cancelled when ctx.stop fired); the
  // per-command result is then in RunCommands' outcome.
  Result<nlohmann::json> Run(ActionContext& ctx) override;

  // Run, returning the per-command result also when a command failed.
  LiveResponseOutcome RunCommands(ActionContext& ctx);

 private:
  Result<nlohmann::json> RunInteractive(ActionContext& ctx);
  struct CommandRun;
  Status PutFile(ActionContext& ctx, const LiveResponseRequest& req, CommandRun& cmd);
  Status RunScriptCommand(ActionContext& ctx, const LiveResponseRequest& req, CommandRun& cmd);
  Status GetFile(ActionContext& ctx, CommandRun& cmd);
  // Fetches library file `name` to `dest`, checks its digest and size again, sets `mode`.
  Status FetchLibraryFile(ActionContext& ctx, const LiveResponseRequest& req,
                          const std::string& name, const std::string& dest, unsigned mode,
                          nlohmann::json& details);
  Result<SentArtifact> Send(ActionContext& ctx, const CommandRun& cmd, const std::string& name,
                            const std::string& path);

  const LiveResponseOptions options_;
  const ArtifactSender send_;
  const LibraryFetcher fetch_;
  const Clock& clock_;
  live::LiveSessionHost* const sessions_;
  std::mutex run_mu_;  // one run at a time: runs share files/ and out/
};

}  // namespace quell::agent
