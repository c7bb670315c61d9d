// The commands a live response session's server answers itself (live_line.cc's table, side
// kServer): help, jobs, fg, status, library, and scan / collect / isolate / release, which
// create ordinary machine actions and follow them to their end.
#include <algorithm>
#include <charconv>

#include "server/live/live_broker.h"
#include "server/live/live_session_state.h"

namespace quell::server::live {
namespace {

using nlohmann::json;

std::optional<uint32_t> ParseId(std::string_view text) {
  uint32_t id = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (err != std::errc() || end != text.data() + text.size() || id == 0) return std::nullopt;
  return id;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

}  // namespace

void LiveSessionBroker::RunServerCommand(Session& s, Command& c, bool as_json) {
  const std::vector<std::string>& argv = c.parsed.argv;
  const std::string& name = argv[0];
  const UnixMillis now = api_.clock.Now();
  if (name == "help") {
    if (argv.size() > 1) {
      const CommandSpec* spec = FindCommand(argv[1]);
      if (spec == nullptr) return Finish(s, c, "Failed", "unknown command '" + argv[1] + "'");
      AppendOutput(s, c,
                   as_json ? json{{"name", spec->name}, {"usage", spec->usage},
                                  {"role", RoleName(spec->role)}, {"help", spec->help}}.dump() + "\n"
                           : std::string(spec->usage) + "\n  " + std::string(spec->help) +
                                 (spec->role == Role::kAdmin ? " (admin)" : "") + "\n");
      return Finish(s, c, "Completed", "");
    }
    json list = json::array();
    std::string text;
    for (const CommandSpec& spec : Commands()) {
      list.push_back({{"name", spec.name}, {"usage", spec.usage}, {"role", RoleName(spec.role)},
                      {"side", spec.side == CommandSide::kServer ? "server" : "agent"},
                      {"help", spec.help}});
      text += Pad(std::string(spec.usage), 44) + std::string(spec.help) +
              (spec.role == Role::kAdmin ? " (admin)" : "") + "\n";
    }
    text += "End a line with & to run it in the background; -output json|table sets the format.\n";
    AppendOutput(s, c, as_json ? list.dump() + "\n" : text);
    return Finish(s, c, "Completed", "");
  }
  if (name == "jobs") {
    json list = json::array();
    std::string text;
    for (const auto& [id, job] : s.commands) {
      if (!job.started_background) continue;
      const std::string status = job.done ? job.status : "Running";
      list.push_back({{"commandId", id}, {"status", status}, {"line", job.line}});
      text += "[" + std::to_string(id) + "] " + Pad(status, 13) + job.line + "\n";
    }
    if (!as_json && text.empty()) text = "no background commands\n";
    AppendOutput(s, c, as_json ? list.dump() + "\n" : text);
    return Finish(s, c, "Completed", "");
  }
  if (name == "fg") {
    std::optional<uint32_t> target_id = argv.size() == 2 ? ParseId(argv[1]) : std::nullopt;
    if (!target_id) return Finish(s, c, "Failed", "usage: fg <id>");
    auto target = s.commands.find(*target_id);
    if (target == s.commands.end() || *target_id == c.id) {
      return Finish(s, c, "Failed", "no command " + argv[1] + " in this session");
    }
    Finish(s, c, "Completed", "");
    Command& t = target->second;
    t.background = false;
    for (size_t off = 0; off < t.kept.size(); off += 64 << 10) {
      Send(s, {{"type", "output"}, {"commandId", t.id}, {"text", t.kept.substr(off, 64 << 10)}});
    }
    if (t.truncated) {
      Send(s, {{"type", "output"},
               {"commandId", t.id},
               {"text", "\n[output beyond " + std::to_string(options_.max_kept_output_bytes) +
                            " bytes was not kept]\n"}});
    }
    if (t.done) {
      json done = {{"type", "done"}, {"commandId", t.id}, {"status", t.status},
                   {"error", t.error}, {"durationMs", t.end - t.start}, {"cwd", s.cwd}};
      if (!t.artifact.is_null()) done["artifact"] = t.artifact;
      Send(s, done);
    } else {
      s.foreground = t.id;
    }
    return;
  }
  if (name == "status") {
    if (argv.size() > 1) {
      std::optional<uint32_t> id = ParseId(argv[1]);
      auto it = id ? s.commands.find(*id) : s.commands.end();
      if (it == s.commands.end()) return Finish(s, c, "Failed", "no command " + argv[1] + " in this session");
      const Command& t = it->second;
      const UnixMillis end = t.done ? t.end : now;
      json info = {{"commandId", t.id}, {"line", t.line},
                   {"status", t.done ? t.status : "Running"}, {"error", t.error},
                   {"background", t.started_background}, {"startTime", FormatIso8601(t.start)},
                   {"endTime", t.done ? json(FormatIso8601(t.end)) : json()},
                   {"durationMs", end - t.start}, {"outputBytes", t.output_bytes}};
      if (!t.action_id.empty()) info["actionId"] = t.action_id;
      std::string text = "command " + std::to_string(t.id) + ": " + t.line + "\n" +
                         "status:   " + info["status"].get<std::string>() +
                         (t.error.empty() ? "" : " (" + t.error + ")") + "\n" +
                         "started:  " + FormatIso8601(t.start) + "\n" +
                         (t.done ? "ended:    " + FormatIso8601(t.end) + "\n" : "") +
                         "duration: " + std::to_string(end - t.start) + " ms\n";
      AppendOutput(s, c, as_json ? info.dump() + "\n" : text);
      return Finish(s, c, "Completed", "");
    }
    json running = json::array();
    std::string running_text;
    for (const auto& [id, job] : s.commands) {
      if (job.done || id == c.id) continue;
      running.push_back(id);
      running_text += (running_text.empty() ? "" : ", ") + std::to_string(id);
    }
    const UnixMillis idle_left =
        std::max<UnixMillis>(0, s.last_activity + options_.idle_timeout_ms - now);
    json info = {{"sessionId", s.id}, {"machineId", s.device_id},
                 {"computerDnsName", s.computer_dns_name}, {"startTime", FormatIso8601(s.opened)},
                 {"idleSecondsLeft", idle_left / 1000}, {"commandsRun", s.commands.size() - 1},
                 {"running", running}, {"cwd", s.cwd}, {"requestedBy", s.token.name}};
    std::string text = "session:  " + s.id + "\ndevice:   " + s.computer_dns_name + " (" +
                       s.device_id + ")\nstarted:  " + FormatIso8601(s.opened) +
                       "\nidle:     closes after " + std::to_string(idle_left / 1000) +
                       " s without input\ncommands: " + std::to_string(s.commands.size() - 1) +
                       "\nrunning:  " + (running_text.empty() ? "none" : running_text) + "\n";
    AppendOutput(s, c, as_json ? info.dump() + "\n" : text);
    return Finish(s, c, "Completed", "");
  }
  if (name == "library") {
    Result<std::vector<LibraryFile>> files = api_.store.ListLibraryFiles();
    if (!files.ok()) return Finish(s, c, "Failed", "cannot read the library: " + std::string(files.status().message()));
    json list = json::array();
    std::string text;
    for (const LibraryFile& f : *files) {
      list.push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256},
                      {"description", f.description}});
      text += Pad(f.name, 32) + Pad(std::to_string(f.size), 12) + f.sha256 + "  " +
              f.description + "\n";
    }
    if (!as_json && text.empty()) text = "the library is empty (POST /api/libraryfiles)\n";
    AppendOutput(s, c, as_json ? list.dump() + "\n" : text);
    return Finish(s, c, "Completed", "");
  }
  StartActionCommand(s, c);
}

void LiveSessionBroker::StartActionCommand(Session& s, Command& c) {
  const std::vector<std::string>& argv = c.parsed.argv;
  const std::string& name = argv[0];
  json body = {{"Comment", "live response session " + s.id + ", command " + std::to_string(c.id)}};
  std::string type;
  if (name == "scan") {
    const std::string kind = argv.size() > 1 ? Lower(argv[1]) : "quick";
    if (argv.size() > 2 || (kind != "quick" && kind != "full")) {
      return Finish(s, c, "Failed", "usage: scan [quick|full]");
    }
    type = "RunAntiVirusScan";
    body["ScanType"] = kind == "quick" ? "Quick" : "Full";
  } else if (name == "collect") {
    if (argv.size() > 1) return Finish(s, c, "Failed", "usage: collect");
    type = "CollectInvestigationPackage";
  } else if (name == "isolate") {
    const std::string kind = argv.size() > 1 ? Lower(argv[1]) : "full";
    if (argv.size() > 2 || (kind != "full" && kind != "selective")) {
      return Finish(s, c, "Failed", "usage: isolate [full|selective]");
    }
    type = "Isolate";
    body["IsolationType"] = kind == "full" ? "Full" : "Selective";
  } else if (name == "release") {
    if (argv.size() > 1) return Finish(s, c, "Failed", "usage: release");
    type = "Unisolate";
  } else {
    // Only reached if live_line.cc's table gains a server command that has no code here;
    // LiveBrokerTest.EveryServerCommandRuns fails first.
    return Finish(s, c, "Failed", "internal error: no server code for '" + name + "'");
  }
  const ActionTypeSpec* spec = FindActionType(type);
  Result<ParsedActionBody> parsed = spec->parse_body(body);
  if (!parsed.ok()) return Finish(s, c, "Failed", std::string(parsed.status().message()));
  Result<MachineAction> action = api_.actions.Create({.machine_id = s.device_id,
                                                      .spec = spec,
                                                      .body = *parsed,
                                                      .requestor = s.token.name,
                                                      .request_source = "LiveResponse"});
  if (!action.ok()) {
    if (action.status().code() == StatusCode::kFailedPrecondition &&
        action.status().message() == kActionInProgress) {
      return Finish(s, c, "Failed",
                    "a " + type + " action (or one it conflicts with) is already in progress on "
                    "this device");
    }
    return Finish(s, c, "Failed", std::string(action.status().message()));
  }
  c.action_id = action->id;
  AppendOutput(s, c, type + " action " + action->id + " created; following it (Ctrl-C cancels it)\n");
  FollowAction(s, c);
}

void LiveSessionBroker::FollowAction(Session& s, Command& c) {
  Result<MachineAction> action = api_.store.GetAction(c.action_id);
  if (!action.ok()) return;  // a store hiccup: the next tick reads again
  std::string report = std::string(ActionStatusName(action->status));
  if (action->status == ActionStatus::kInProgress && action->progress_percent > 0) {
    report += " " + std::to_string(action->progress_percent) + "%";
  }
  if (!action->status_message.empty()) report += ": " + action->status_message;
  if (report != c.last_report) {
    c.last_report = report;
    AppendOutput(s, c, report + "\n");
  }
  if (!IsFinal(action->status)) return;
  if (action->status == ActionStatus::kSucceeded) return Finish(s, c, "Completed", "");
  if (action->status == ActionStatus::kCancelled) {
    return Finish(s, c, "Cancelled", "action " + action->id + " was cancelled");
  }
  Finish(s, c, "Failed",
         "action " + action->id + " ended " + std::string(ActionStatusName(action->status)) +
             (action->status_message.empty() ? "" : ": " + action->status_message));
}
}  // namespace quell::server::live
