#include "agent/actions/live_response.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "agent/live/safe_paths.h"
#include "agent/live/script_args.h"
#include "agent/live/script_runner.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/logging.h"
#include "common/unique_fd.h"
#include "common/utf8.h"

namespace quell::agent {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

auto Log() {
  static auto log = Logger("live");
  return log;
}

constexpr size_t kMaxCommands = 20;
constexpr size_t kDetailsOutputBytes = 4096;
constexpr char kTruncatedMark[] = "\n[truncated]";

// Defender's order: every PutFile, then every RunScript, then every GetFile.
int Rank(const std::string& type) {
  if (type == "PutFile") return 0;
  if (type == "RunScript") return 1;
  if (type == "GetFile") return 2;
  return -1;
}

bool IsLowerHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The library file a command names, or empty.
std::string LibraryName(const LiveCommand& c) {
  if (c.type == "PutFile") return c.params.at("FileName");
  if (c.type == "RunScript") return c.params.at("ScriptName");
  return "";
}

// "GetFile /etc/x", for messages.
std::string Describe(const LiveCommand& c) {
  if (c.type == "GetFile") return c.type + " " + c.params.at("Path");
  return c.type + " " + LibraryName(c);
}

// Script output is arbitrary bytes, and JSON strings must be UTF-8.
std::string ValidUtf8(std::string_view in) {
  return quell::ValidUtf8(in, InvalidUtf8::kReplacementCharacter);
}

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(d.count()) / 1000);
  return buf;
}

// Removes the files a command staged when it ends, however it ends.
class StagedFiles {
 public:
  explicit StagedFiles(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  ~StagedFiles() {
    for (const std::string& p : paths_) (void)RemoveFile(p);
  }
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;

 private:
  std::vector<std::string> paths_;
};

Result<LiveCommand> ParseCommand(const Json& j) {
  if (!j.is_object()) return InvalidArgument("must be an object");
  LiveCommand c;
  for (const auto& [key, value] : j.items()) {
    if (key == "type" && value.is_string()) {
      c.type = value.get<std::string>();
    } else if (key == "params" && value.is_array()) {
      for (const Json& p : value) {
        if (!p.is_object() || p.size() != 2 || !p.contains("key") || !p.contains("value") ||
            !p["key"].is_string() || !p["value"].is_string()) {
          return InvalidArgument("each of params must be {\"key\": string, \"value\": string}");
        }
        const std::string k = p["key"].get<std::string>();
        if (!c.params.emplace(k, p["value"].get<std::string>()).second) {
          return InvalidArgument("parameter '" + k + "' given twice");
        }
      }
    } else {
      return InvalidArgument("unexpected '" + key + "'");
    }
  }
  if (Rank(c.type) < 0) {
    return InvalidArgument("type must be PutFile, RunScript or GetFile, not '" + c.type + "'");
  }
  const std::vector<std::string> required =
      c.type == "PutFile" ? std::vector<std::string>{"FileName"}
      : c.type == "RunScript" ? std::vector<std::string>{"ScriptName"}
                              : std::vector<std::string>{"Path"};
  for (const std::string& k : required) {
    if (!c.params.contains(k)) return InvalidArgument(c.type + " needs parameter '" + k + "'");
  }
  for (const auto& [k, v] : c.params) {
    const bool known = std::find(required.begin(), required.end(), k) != required.end() ||
                       (c.type == "RunScript" && k == "Args");
    if (!known) return InvalidArgument(c.type + " does not take parameter '" + k + "'");
  }
  if (c.type != "GetFile") {
    const std::string name = LibraryName(c);
    if (!live::ValidLibraryName(name)) {
      return InvalidArgument("'" + name + "' is not a library file name");
    }
  }
  if (c.type == "RunScript" && c.params.contains("Args")) {
    QUELL_RETURN_IF_ERROR(live::SplitScriptArgs(c.params.at("Args")).status());
  }
  if (c.type == "GetFile") {
    const std::string& path = c.params.at("Path");
    if (path.empty() || path[0] != '/') return InvalidArgument("Path must be absolute");
    if (path.find('\0') != std::string::npos) return InvalidArgument("Path contains NUL");
    if (path.size() > live::kMaxGetFilePathChars) {
      return InvalidArgument("Path is longer than " + std::to_string(live::kMaxGetFilePathChars) +
                             " characters");
    }
  }
  return c;
}

}  // namespace

Status PrepareLiveWorkDir(const std::string& work_dir) {
  QUELL_RETURN_IF_ERROR(MakeDirs(work_dir, 0700));
  for (const char* sub : {"files", "scripts", "out"}) {
    const std::string dir = work_dir + "/" + sub;
    std::error_code ec;
    fs::remove_all(dir, ec);  // a symlink planted here is removed, not followed
    if (ec) return Internal("empty " + dir + ": " + ec.message());
    QUELL_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  }
  // Kept: files put with -keep and the remediation journal outlive the agent on purpose.
  return MakeDirs(work_dir + "/kept", 0700);
}

Result<bool> IsInteractiveLiveResponse(const Json& parameters) {
  if (!parameters.is_object() || !parameters.contains("Interactive")) return false;
  for (const auto& [key, value] : parameters.items()) {
    if (key == "Interactive" && value.is_boolean() && value.get<bool>()) continue;
    if (key == "Comment" && (value.is_string() || value.is_null())) continue;
    if (key == "Interactive") return InvalidArgument("LiveResponse: Interactive must be true");
    return InvalidArgument("LiveResponse: an interactive session takes no '" + key + "'");
  }
  return true;
}

Result<LiveResponseRequest> ParseLiveResponseParameters(const Json& parameters) {
  if (!parameters.is_object()) return InvalidArgument("LiveResponse parameters must be an object");
  LiveResponseRequest req;
  const Json* commands = nullptr;
  const Json* library = nullptr;
  for (const auto& [key, value] : parameters.items()) {
    if (key == "Comment" && (value.is_string() || value.is_null())) continue;
    if (key == "Commands") {
      commands = &value;
    } else if (key == "Library") {
      library = &value;
    } else {
      return InvalidArgument("LiveResponse: unexpected parameter '" + key + "'");
    }
  }
  if (commands == nullptr || !commands->is_array() || commands->empty() ||
      commands->size() > kMaxCommands) {
    return InvalidArgument("LiveResponse: Commands must be a list of 1 to " +
                           std::to_string(kMaxCommands) + " commands");
  }
  int rank = 0;
  for (size_t i = 0; i < commands->size(); ++i) {
    Result<LiveCommand> c = ParseCommand((*commands)[i]);
    if (!c.ok()) {
      return InvalidArgument("LiveResponse: Commands[" + std::to_string(i) +
                             "]: " + c.status().message());
    }
    if (Rank(c->type) < rank) {
      return InvalidArgument("LiveResponse: Commands[" + std::to_string(i) + "]: " + c->type +
                             " after a later kind; the order is PutFile, RunScript, GetFile");
    }
    rank = Rank(c->type);
    req.commands.push_back(std::move(*c));
  }
  if (library != nullptr && !library->is_object()) {
    return InvalidArgument("LiveResponse: Library must be an object");
  }
  if (library != nullptr) {
    for (const auto& [name, entry] : library->items()) {
      if (!live::ValidLibraryName(name) || !entry.is_object() || entry.size() != 2 ||
          !entry.contains("sha256") || !entry["sha256"].is_string() ||
          !IsLowerHex64(entry["sha256"].get<std::string>()) || !entry.contains("size") ||
          !entry["size"].is_number_unsigned()) {
        return InvalidArgument("LiveResponse: Library['" + name +
                               "'] must be {\"sha256\": lowercase hex, \"size\": bytes}");
      }
      req.library[name] = {entry["sha256"].get<std::string>(), entry["size"].get<uint64_t>()};
    }
  }
  for (const LiveCommand& c : req.commands) {
    const std::string name = LibraryName(c);
    if (!name.empty() && !req.library.contains(name)) {
      return InvalidArgument("LiveResponse: Library has no entry for '" + name + "'");
    }
  }
  return req;
}

struct LiveResponseAction::CommandRun {
  size_t index;
  size_t count;
  const LiveCommand& command;
  Json& entry;  // this command's object in the result
};

LiveResponseAction::LiveResponseAction(LiveResponseOptions options, ArtifactSender send,
                                       LibraryFetcher fetch, const Clock& clock,
                                       live::LiveSessionHost* sessions)
    : options_(std::move(options)),
      send_(std::move(send)),
      fetch_(std::move(fetch)),
      clock_(clock),
      sessions_(sessions) {}

const ActionSpec& LiveResponseAction::Spec() const {
  static const Json kParam = {{"type", "object"},
                              {"required", {"key", "value"}},
                              {"properties",
                               {{"key", {{"enum", {"FileName", "ScriptName", "Args", "Path"}}}},
                                {"value", {{"type", "string"}}}}}};
  static const ActionSpec spec{
      .type = "LiveResponse",
      .undo_type = "",
      .description =
          "Runs up to 20 commands in order: PutFile copies a library file to the device's "
          "live-response directory, RunScript runs a library script there (its own process "
          "group, no shell, time-limited) and uploads its exit code and output, GetFile "
          "uploads a regular file (not from /proc, /sys or /dev). The first failure stops the "
          "rest. With {\"Interactive\": true} instead of Commands: an interactive session "
          "that lasts until the server ends it.",
      .risk = "high",
      .parameters_schema =
          {{"type", "object"},
           {"oneOf", {{{"required", {"Commands"}}}, {{"required", {"Interactive"}}}}},
           {"properties",
            {{"Comment", {{"type", "string"}}},
             {"Interactive", {{"const", true}}},
             {"Commands",
              {{"type", "array"},
               {"minItems", 1},
               {"maxItems", kMaxCommands},
               {"items",
                {{"type", "object"},
                 {"required", {"type", "params"}},
                 {"properties",
                  {{"type", {{"enum", {"PutFile", "RunScript", "GetFile"}}}},
                   {"params", {{"type", "array"}, {"items", kParam}}}}}}}}},
             {"Library",
              {{"type", "object"},
               {"additionalProperties",
                {{"type", "object"},
                 {"properties",
                  {{"sha256", {{"type", "string"}}}, {"size", {{"type", "integer"}}}}}}}}}}},
           {"additionalProperties", false}},
  };
  return spec;
}

Status LiveResponseAction::Validate(const Json& parameters) const {
  QUELL_ASSIGN_OR_RETURN(bool interactive, IsInteractiveLiveResponse(parameters));
  if (interactive) return Status::Ok();
  return ParseLiveResponseParameters(parameters).status();
}

Result<Json> LiveResponseAction::RunInteractive(ActionContext& ctx) {
  if (sessions_ == nullptr) {
    return FailedPrecondition("interactive live response is not available on this agent");
  }
  std::unique_lock run_lock(run_mu_, std::try_to_lock);
  if (!run_lock.owns_lock()) {
    return FailedPrecondition("another live response is running on this device");
  }
  QUELL_ASSIGN_OR_RETURN(uint32_t commands,
                         sessions_->RunSession(ctx.action_id, ctx.stop,
                                               [&] { ctx.report_progress(0, "session open"); }));
  return Json{{"commands", commands}};
}

Result<Json> LiveResponseAction::Run(ActionContext& ctx) {
  QUELL_ASSIGN_OR_RETURN(bool interactive, IsInteractiveLiveResponse(ctx.parameters));
  if (interactive) return RunInteractive(ctx);
  LiveResponseOutcome outcome = RunCommands(ctx);
  if (outcome.status.ok()) return std::move(outcome.result);
  // The per-command statuses go to the server with the failure too.
  ctx.failure_result = std::move(outcome.result);
  return outcome.status;
}

LiveResponseOutcome LiveResponseAction::RunCommands(ActionContext& ctx) {
  LiveResponseOutcome outcome{Json{{"commands", Json::array()}}, Status::Ok()};
  Result<LiveResponseRequest> parsed = ParseLiveResponseParameters(ctx.parameters);
  if (!parsed.ok()) {
    outcome.status = parsed.status();
    return outcome;
  }
  const LiveResponseRequest& req = *parsed;
  std::unique_lock run_lock(run_mu_, std::try_to_lock);
  if (!run_lock.owns_lock()) {
    outcome.status = FailedPrecondition("another live response is running on this device");
    return outcome;
  }
  Json& commands = outcome.result["commands"];
  for (size_t i = 0; i < req.commands.size(); ++i) {
    commands.push_back({{"index", i},
                        {"type", req.commands[i].type},
                        {"commandStatus", "Created"},
                        {"startTime", nullptr},
                        {"endTime", nullptr},
                        {"errors", Json::array()},
                        {"details", Json::object()}});
  }
  for (const char* sub : {"files", "scripts", "out"}) {
    if (Status s = MakeDirs(options_.work_dir + "/" + sub, 0700); !s.ok()) {
      outcome.status = s.WithContext("live response working directory");
      return outcome;
    }
  }

  const size_t n = req.commands.size();
  for (size_t i = 0; i < n; ++i) {
    const LiveCommand& command = req.commands[i];
    const std::string what = "command " + std::to_string(i) + " (" + Describe(command) + ")";
    if (ctx.stop.stop_requested()) {
      outcome.status = Cancelled("cancelled before " + what);
      break;
    }
    ctx.report_progress(static_cast<uint32_t>(100 * i / n), what);
    CommandRun cmd{i, n, command, commands[i]};
    cmd.entry["startTime"] = FormatIso8601(clock_.Now());
    Status s = command.type == "PutFile"     ? PutFile(ctx, req, cmd)
               : command.type == "RunScript" ? RunScriptCommand(ctx, req, cmd)
                                             : GetFile(ctx, cmd);
    cmd.entry["endTime"] = FormatIso8601(clock_.Now());
    if (s.ok()) {
      cmd.entry["commandStatus"] = "Completed";
      Log()->info("action={} {} completed", ctx.action_id, what);
      continue;
    }
    cmd.entry["commandStatus"] = "Failed";
    cmd.entry["errors"].push_back(ValidUtf8(s.message()));
    Log()->warn("action={} {} failed: {}", ctx.action_id, what, s.message());
    outcome.status = ctx.stop.stop_requested()
                         ? Cancelled(what + " cancelled")
                         : Status(s.code(), what + " failed: " + ValidUtf8(s.message()));
    break;
  }
  return outcome;
}

Status LiveResponseAction::FetchLibraryFile(ActionContext& ctx, const LiveResponseRequest& req,
                                            const std::string& name, const std::string& dest,
                                            unsigned mode, Json& details) {
  const LiveLibraryEntry& want = req.library.at(name);
  QUELL_RETURN_IF_ERROR(fetch_(ctx.action_id, name, want.sha256, dest, ctx.stop)
                            .WithContext("fetch library file '" + name + "'"));
  // Checked again here rather than trusted: what runs as root must be what was uploaded.
  UniqueFd fd(::open(dest.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + dest);
  QUELL_ASSIGN_OR_RETURN(FileHashes got, HashFd(fd.get()));
  if (got.sha256 != want.sha256 || got.size != want.size) {
    (void)RemoveFile(dest);
    return FailedPrecondition("library file '" + name + "' does not match the library: sha256 " +
                              got.sha256 + ", " + std::to_string(got.size) + " bytes; expected " +
                              want.sha256 + ", " + std::to_string(want.size) + " bytes");
  }
  if (::fchmod(fd.get(), mode) != 0) return ErrnoStatus("chmod " + dest);
  details["sha256"] = got.sha256;
  details["size"] = got.size;
  return Status::Ok();
}

Result<SentArtifact> LiveResponseAction::Send(ActionContext& ctx, const CommandRun& cmd,
                                              const std::string& name, const std::string& path) {
  const uint64_t base = 100 * cmd.index / cmd.count;
  const uint64_t span = 100 / cmd.count;
  return send_(ctx.action_id, name, path, ctx.stop, [&](uint64_t stored, uint64_t total) {
    const uint64_t pct = total == 0 ? base : base + span * stored / total;
    ctx.report_progress(static_cast<uint32_t>(pct),
                        "command " + std::to_string(cmd.index) + ": uploaded " +
                            std::to_string(stored >> 10) + " of " + std::to_string(total >> 10) +
                            " KiB");
  });
}

Status LiveResponseAction::PutFile(ActionContext& ctx, const LiveResponseRequest& req,
                                   CommandRun& cmd) {
  const std::string& name = cmd.command.params.at("FileName");
  Json& details = cmd.entry["details"];
  details["file_name"] = name;
  return FetchLibraryFile(ctx, req, name, options_.work_dir + "/files/" + name, 0600, details);
}

Status LiveResponseAction::RunScriptCommand(ActionContext& ctx, const LiveResponseRequest& req,
                                            CommandRun& cmd) {
  const std::string& name = cmd.command.params.at("ScriptName");
  const std::string script = options_.work_dir + "/scripts/" + name;
  Json fetched;
  QUELL_RETURN_IF_ERROR(FetchLibraryFile(ctx, req, name, script, 0700, fetched));
  auto args_it = cmd.command.params.find("Args");
  QUELL_ASSIGN_OR_RETURN(
      std::vector<std::string> args,
      live::SplitScriptArgs(args_it == cmd.command.params.end() ? "" : args_it->second));

  const std::string artifact = "command-" + std::to_string(cmd.index) + ".json";
  const std::string staged = options_.work_dir + "/out/command-" + std::to_string(cmd.index);
  StagedFiles cleanup({staged + ".stdout", staged + ".stderr", staged + ".json"});
  const live::ScriptRunOptions run_options{.cwd = options_.work_dir + "/files",
                                           .stdout_path = staged + ".stdout",
                                           .stderr_path = staged + ".stderr",
                                           .max_output_bytes = options_.max_output_bytes,
                                           .time_limit = options_.script_timeout};
  QUELL_ASSIGN_OR_RETURN(live::ScriptRunResult ran,
                         live::RunScript(script, args, run_options, ctx.stop));
  if (ran.cancelled) return Cancelled("cancelled");

  QUELL_ASSIGN_OR_RETURN(std::string out, ReadFile(staged + ".stdout"));
  QUELL_ASSIGN_OR_RETURN(std::string err, ReadFile(staged + ".stderr"));
  // As a shell reports it: 128 + the signal that ended the script.
  const int exit_code = ran.exit_code ? *ran.exit_code : 128 + ran.signal;
  Json& details = cmd.entry["details"];
  details["exit_code"] = exit_code;
  details["script_output"] = ValidUtf8(std::string_view(out).substr(0, kDetailsOutputBytes));
  details["duration_ms"] = ran.duration.count();
  if (ran.signal != 0) details["signal"] = ran.signal;
  if (ran.stdout_truncated) details["output_truncated"] = true;
  if (ran.stderr_truncated) details["errors_truncated"] = true;

  const Json report = {
      {"script_name", name},
      {"exit_code", exit_code},
      {"script_output", ValidUtf8(out) + (ran.stdout_truncated ? kTruncatedMark : "")},
      {"script_errors", ValidUtf8(err) + (ran.stderr_truncated ? kTruncatedMark : "")},
  };
  out.clear();
  err.clear();
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(staged + ".json", report.dump()));
  // Also after a timeout: the output so far is what the responder needs to see why.
  Result<SentArtifact> sent = Send(ctx, cmd, artifact, staged + ".json");
  if (sent.ok()) cmd.entry["artifact"] = artifact;
  if (ran.timed_out) return DeadlineExceeded("timed out after " + Seconds(options_.script_timeout));
  return sent.status().WithContext("upload " + artifact);
}

Status LiveResponseAction::GetFile(ActionContext& ctx, CommandRun& cmd) {
  const std::string& path = cmd.command.params.at("Path");
  QUELL_ASSIGN_OR_RETURN(live::ReadableFile file,
                         live::CheckReadableFile(path, options_.max_get_file_bytes));
  // Sent through the descriptor that was checked: the sender opens the path it is given, and
  // /proc/self/fd/<n> reopens this very file, whatever has happened to `path` since.
  const std::string artifact = "command-" + std::to_string(cmd.index);
  QUELL_ASSIGN_OR_RETURN(
      SentArtifact sent,
      Send(ctx, cmd, artifact, "/proc/self/fd/" + std::to_string(file.fd.get())));
  cmd.entry["artifact"] = artifact;
  Json& details = cmd.entry["details"];
  details["path"] = ValidUtf8(file.path);
  details["size"] = sent.size;
  details["sha256"] = sent.sha256;
  return Status::Ok();
}

}  // namespace quell::agent
