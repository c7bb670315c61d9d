// The live shell's host commands: run, processes, connections, the collected listings
// (persistence, services, scheduledtasks), remediate and undo.
#include <sys/stat.h>

#include <filesystem>

#include "agent/collect/collectors.h"
#include "agent/collect/package_staging.h"
#include "agent/collect/process_table.h"
#include "agent/collect/socket_table.h"
#include "agent/live/live_shell.h"
#include "agent/live/live_shell_internal.h"
#include "agent/live/safe_paths.h"
#include "agent/live/script_args.h"
#include "agent/live/script_runner.h"
#include "common/files.h"

namespace quell::agent::live {

using namespace shell_internal;
using Json = nlohmann::json;

namespace {

// Checks already-split arguments with the same rules as an Args string (script_args.h): each
// is quoted and the whole line split again; it must give back the same words.
Status CheckRunArgs(const std::vector<std::string>& args) {
  std::string line;
  for (const std::string& a : args) {
    const char quote = a.find('\'') == std::string::npos ? '\'' : '"';
    if (a.find(quote) != std::string::npos) {
      return InvalidArgument("an argument may not contain both ' and \"");
    }
    if (!line.empty()) line += ' ';
    line += quote + a + quote;
  }
  QUELL_ASSIGN_OR_RETURN(std::vector<std::string> split, SplitScriptArgs(line));
  if (split != args) return InvalidArgument("the arguments cannot be passed unchanged");
  return Status::Ok();
}

// Removes a directory tree when the command ends, however it ends.
class RemoveTree {
 public:
  explicit RemoveTree(std::string path) : path_(std::move(path)) {}
  ~RemoveTree() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  RemoveTree(const RemoveTree&) = delete;
  RemoveTree& operator=(const RemoveTree&) = delete;

 private:
  std::string path_;
};

std::string JoinStrings(const Json& list, const std::string& sep) {
  std::string out;
  if (!list.is_array()) return out;
  for (const Json& v : list) {
    if (!v.is_string()) continue;
    if (!out.empty()) out += sep;
    out += v.get<std::string>();
  }
  return out;
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

Status LiveShell::Run(Ctx& c) {
  if (c.argv().size() < 2) return InvalidArgument("usage: run <library script> [arguments...]");
  const std::string& name = c.argv()[1];
  if (!ValidLibraryName(name)) return InvalidArgument("'" + Printable(name) + "' is not a library file name");
  const std::vector<std::string> args(c.argv().begin() + 2, c.argv().end());
  QUELL_RETURN_IF_ERROR(CheckRunArgs(args));
  const std::string script = options_.work_dir + "/scripts/" + name;
  QUELL_RETURN_IF_ERROR(FetchLibrary(c, name, script, 0700));
  QUELL_RETURN_IF_ERROR(MakeDirs(options_.work_dir + "/files", 0700));
  QUELL_RETURN_IF_ERROR(MakeDirs(options_.work_dir + "/out", 0700));
  const std::string staged = options_.work_dir + "/out/live-" + c.req.session_id + "-" +
                             std::to_string(c.req.command_id);
  struct Cleanup {
    std::string base;
    ~Cleanup() {
      (void)RemoveFile(base + ".stdout");
      (void)RemoveFile(base + ".stderr");
    }
  } cleanup{staged};
  ScriptRunOptions run_options{.cwd = options_.work_dir + "/files",
                               .stdout_path = staged + ".stdout",
                               .stderr_path = staged + ".stderr",
                               .max_output_bytes = options_.max_script_output_bytes,
                               .time_limit = c.req.time_limit};
  // As a table, stdout is shown while the script runs; JSON needs it whole, at the end.
  if (!c.req.json) run_options.on_stdout = [&c](std::string_view piece) { c.Print(piece); };
  QUELL_ASSIGN_OR_RETURN(ScriptRunResult ran, RunScript(script, args, run_options, c.stop));
  QUELL_ASSIGN_OR_RETURN(std::string out, ReadFile(staged + ".stdout"));
  QUELL_ASSIGN_OR_RETURN(std::string err, ReadFile(staged + ".stderr"));
  const int exit_code = ran.exit_code ? *ran.exit_code : 128 + ran.signal;
  if (c.req.json) {
    Json j = {{"script", name},
              {"args", args},
              {"exitCode", exit_code},
              {"stdout", out},
              {"stderr", err},
              {"durationMs", ran.duration.count()},
              {"stdoutTruncated", ran.stdout_truncated},
              {"stderrTruncated", ran.stderr_truncated}};
    if (ran.signal != 0) j["signal"] = ran.signal;
    c.PrintJson(j);
  } else {
    if (!out.empty() && out.back() != '\n') c.Print("\n");
    if (ran.stdout_truncated) c.Print("[stdout cut]\n");
    if (!err.empty()) {
      c.Print("--- stderr ---\n" + err);
      if (err.back() != '\n') c.Print("\n");
      if (ran.stderr_truncated) c.Print("[stderr cut]\n");
    }
    if (!ran.cancelled && !ran.timed_out) {
      c.Print("exit code " + std::to_string(exit_code) +
              (ran.signal != 0 ? " (signal " + std::to_string(ran.signal) + ")" : "") + "\n");
    }
  }
  if (ran.cancelled) return Cancelled("cancelled; the script's process group was killed");
  if (ran.timed_out) {
    return DeadlineExceeded("timed out after " + std::to_string(c.req.time_limit.count() / 1000) + " s");
  }
  if (exit_code != 0) return FailedPrecondition("exit code " + std::to_string(exit_code));
  return Status::Ok();
}

Status LiveShell::Processes(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 0, 0, "processes"));
  std::stop_token stop = c.stop;
  QUELL_ASSIGN_OR_RETURN(
      std::vector<collect::ProcessRecord> procs,
      collect::ListProcesses(options_.proc_root,
                             {.passwd_path = options_.collect_root == "/"
                                                 ? "/etc/passwd"
                                                 : options_.collect_root + "/etc/passwd",
                              .stop_hashing = [stop] { return stop.stop_requested(); }}));
  if (c.stop.stop_requested()) return Cancelled("cancelled");
  if (c.req.json) {
    c.PrintJson({{"processes", collect::ProcessesToJson(procs)}});
  } else {
    c.Print(std::to_string(procs.size()) + " processes (pid user command line):\n" +
            collect::ProcessTreeText(procs));
  }
  return Status::Ok();
}

Status LiveShell::Connections(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 0, 0, "connections"));
  QUELL_ASSIGN_OR_RETURN(std::vector<collect::SocketRecord> sockets,
                         collect::ListSockets(options_.proc_root));
  if (c.req.json) {
    c.PrintJson({{"connections", collect::SocketsToJson(sockets)}});
  } else {
    c.Print(collect::SocketsTableText(sockets));
  }
  return Status::Ok();
}

// The investigation package's collectors, run into a scratch staging directory (files only,
// no commands) and read back: one implementation of "what starts on this host".
Status LiveShell::Collected(Ctx& c, const std::string& what) {
  const std::string dir = options_.work_dir + "/out/live-" + c.req.session_id + "-" +
                          std::to_string(c.req.command_id) + "-" + what;
  RemoveTree cleanup(dir);
  QUELL_ASSIGN_OR_RETURN(
      std::unique_ptr<collect::PackageStaging> staging,
      collect::PackageStaging::Create(dir,
                                      {.max_artifact_bytes = 32ull << 20,
                                       .max_total_bytes = 128ull << 20,
                                       .time_limit = c.req.time_limit},
                                      c.stop));
  const collect::CollectSources sources{.root = options_.collect_root,
                                        .proc_root = options_.proc_root,
                                        .run_commands = false};
  std::string file;
  if (what == "persistence") {
    collect::CollectAutoruns(sources, *staging);
    file = dir + "/Autoruns/autoruns.json";
  } else if (what == "services") {
    collect::CollectServices(sources, *staging);
    file = dir + "/Services/services.json";
  } else {
    collect::CollectScheduledTasks(sources, *staging);
    file = dir + "/Scheduled tasks/scheduled_tasks.json";
  }
  if (c.stop.stop_requested()) return Cancelled("cancelled");
  QUELL_ASSIGN_OR_RETURN(std::string text, ReadFile(file));
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return Internal("cannot read the " + what + " listing");
  Json problems = Json::array();
  for (const collect::CollectFailure& f : staging->failures()) {
    problems.push_back({{"what", f.what}, {"reason", f.reason}});
  }
  if (c.req.json) {
    j["unreadable"] = problems;
    c.PrintJson(j);
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  if (what == "persistence") {
    header = {"kind", "location", "what it runs"};
    for (const Json& e : j.value("entries", Json::array())) {
      std::string runs = e.contains("target") ? "-> " + Str(e, "target") : JoinStrings(e.value("lines", Json::array()), " ; ");
      if (e.value("package_owned", false)) runs += " (package)";
      rows.push_back({Str(e, "kind"), Printable(Str(e, "location")), Printable(runs)});
    }
  } else if (what == "services") {
    header = {"service", "enabled", "state", "unit file", "exec"};
    for (const Json& s : j.value("services", Json::array())) {
      std::string state = s.value("masked", false) ? "masked" : s.value("overridden", false) ? "overridden" : "-";
      std::string exec = s.contains("symlink_to") ? "-> " + Str(s, "symlink_to") : JoinStrings(s.value("exec", Json::array()), " ; ");
      rows.push_back({Printable(Str(s, "name")), s.value("enabled", false) ? "enabled" : "-", state,
                      Printable(Str(s, "source")), Printable(exec)});
    }
    for (const Json& i : j.value("init_d", Json::array())) {
      rows.push_back({Printable(Str(i, "name")), "-", "init.d", "/etc/init.d/" + Printable(Str(i, "name")), ""});
    }
  } else {
    header = {"type", "schedule", "user", "command", "source"};
    for (const Json& t : j.value("tasks", Json::array())) {
      std::string schedule = t.contains("schedule") && t["schedule"].is_array()
                                 ? JoinStrings(t["schedule"], " ")
                                 : Str(t, "schedule");
      std::string command = Str(t, "command");
      if (command.empty() && t.contains("commands")) command = JoinStrings(t["commands"], " ; ");
      if (command.empty() && t.contains("unit") && t["unit"].is_object()) {
        command = Str(t["unit"], "name") + " [" + JoinStrings(t["unit"].value("settings", Json::array()), "; ") + "]";
      }
      if (t.contains("symlink_to")) command = "-> " + Str(t, "symlink_to");
      std::string source = Str(t, "source");
      if (t.contains("line") && t["line"].is_number()) source += ":" + std::to_string(t["line"].get<int64_t>());
      rows.push_back({Str(t, "type"), Printable(schedule), Printable(Str(t, "user")),
                      Printable(command), Printable(source)});
    }
  }
  std::string out = Table(header, rows);
  for (const Json& p : problems) {
    out += "unreadable: " + Printable(Str(p, "what")) + ": " + Printable(Str(p, "reason")) + "\n";
  }
  c.Print(out);
  return Status::Ok();
}

Status LiveShell::Remediate(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 2, 2, "remediate file|process|service|cron <target>"));
  if (options_.remediation == nullptr) return FailedPrecondition("remediation is not available on this agent");
  const std::string& kind = c.argv()[1];
  std::string target = c.argv()[2];
  if (kind == "file" || (kind == "cron" && !target.empty() && (target[0] == '/' || target[0] == '.'))) {
    // A relative path names a file in the session's cwd (cron targets are paths or words).
    target = Resolve(c.cwd, target);
  }
  QUELL_ASSIGN_OR_RETURN(Json rec, options_.remediation->Remediate(kind, target, c.req.session_id,
                                                                   c.req.requested_by));
  Json shown = {{"id", rec["id"]}, {"kind", rec["kind"]}, {"target", rec["target"]},
                {"removed", rec["removed"]}};
  if (rec.contains("process")) shown["process"] = rec["process"];
  if (c.req.json) {
    c.PrintJson(shown);
    return Status::Ok();
  }
  const std::string id = rec["id"].get<std::string>();
  std::string text = id + ": remediated " + kind + " " + Printable(target) + "\n";
  for (const Json& r : rec["removed"]) {
    text += "  " + Str(r, "what") + "  " + Printable(Str(r, "location"));
    const std::string detail = Str(r, "detail");
    if (!detail.empty()) text += "  " + Printable(detail);
    text += "\n";
  }
  text += kind == "process" ? "a killed process cannot be restarted by undo\n"
                            : "to put it back: undo " + id + "\n";
  c.Print(text);
  return Status::Ok();
}

Status LiveShell::Undo(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 0, 1, "undo [remediation id]"));
  if (options_.remediation == nullptr) return FailedPrecondition("remediation is not available on this agent");
  std::optional<std::string> id;
  if (c.argv().size() > 1) id = c.argv()[1];
  QUELL_ASSIGN_OR_RETURN(Json rec, options_.remediation->Undo(id));
  if (c.req.json) {
    c.PrintJson({{"id", rec["id"]}, {"kind", rec["kind"]}, {"target", rec["target"]},
                 {"restored", rec.value("restored", Json::array())}});
    return Status::Ok();
  }
  std::string text = Str(rec, "id") + ": undone (" + Str(rec, "kind") + " " +
                     Printable(Str(rec, "target")) + ")\n";
  for (const Json& r : rec.value("restored", Json::array())) {
    text += "  restored " + Printable(Str(r, "location"));
    const std::string detail = Str(r, "detail");
    if (!detail.empty()) text += "  " + Printable(detail);
    text += "\n";
  }
  c.Print(text);
  return Status::Ok();
}

}  // namespace quell::agent::live
