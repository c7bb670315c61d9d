// quell machine scan <id> [--full] [--comment …] [--no-wait]: runs RunAntiVirusScan and
// follows it with a live progress bar on stderr, then prints a summary of what was found.
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/action_progress.h"
#include "cli/cli_context.h"
#include "cli/table.h"

namespace quell::cli {
namespace {

struct ScanFlags {
  std::string machine;
  std::string comment = "Antivirus scan requested with the quell CLI";
  bool full = false;
  bool no_wait = false;
  int wait_seconds = 24 * 3600;
};

int FollowScan(CliContext& ctx, const std::string& action_id, int timeout_seconds) {
  nlohmann::json action;
  if (int code = FollowActionProgress(ctx, action_id, timeout_seconds, "scan", action); code != 0) {
    return code;
  }
  if (PrintJsonIfAsked(ctx, action)) return Field(action, "status") == "Succeeded" ? 0 : 1;

  const std::string status = Field(action, "status");
  if (status != "Succeeded") {
    ctx.out << "scan " << action_id << " " << status << ": " << Field(action, "statusMessage")
            << "\n";
    return kExitApiError;
  }
  const nlohmann::json& result = action["result"];
  auto num = [&](const char* k) { return result.is_object() ? result.value(k, 0ll) : 0ll; };
  ctx.out << "scan " << action_id << " (" << (result.is_object() ? result.value("scanType", "?") : "?")
          << ") finished in " << num("durationMs") / 1000.0 << " s: " << num("filesScanned")
          << " files scanned, " << num("filesSkippedUnchanged") << " unchanged since the last clean scan, "
          << num("detectionCount") << " detection(s)\n";
  if (result.is_object() && result.contains("detections") && !result["detections"].empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : result["detections"]) {
      std::string path = Field(d, "filePath");
      if (d.contains("archiveMemberPath")) path += " -> " + Field(d, "archiveMemberPath");
      rows.push_back({Field(d, "threatName"), Field(d, "detectorId"), path,
                      Field(d, "sha256").substr(0, 16)});
    }
    ctx.out << RenderTable({"THREAT", "ENGINE", "FILE", "SHA256"}, rows);
  }
  if (result.is_object() && result.contains("warnings")) {
    for (const auto& w : result["warnings"]) {
      if (w.is_string()) ctx.err << "warning: " << w.get<std::string>() << "\n";
    }
  }
  return 0;
}

}  // namespace

void AddScanCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  CLI::App* machine = app.get_subcommand("machine");
  auto flags = std::make_shared<ScanFlags>();
  auto* scan = machine->add_subcommand(
      "scan", "Run an antivirus scan (Quick by default) and follow its progress");
  scan->add_option("machine", flags->machine, "Machine id or computer name")->required();
  scan->add_flag("--full", flags->full, "Full scan of every local filesystem (default: Quick)");
  scan->add_option("--comment,-c", flags->comment, "Why (recorded in the audit log)")
      ->capture_default_str();
  scan->add_flag("--no-wait", flags->no_wait, "Print the action and return at once");
  scan->add_option("--wait-seconds", flags->wait_seconds, "How long to follow the scan")
      ->capture_default_str();
  scan->callback([&ctx, &exit_code, flags] {
    std::string id = ResolveMachineId(ctx, flags->machine);
    if (id.empty()) {
      exit_code = kExitApiError;
      return;
    }
    CallResult r = CallApi(ctx, "POST", "/api/machines/" + UrlEncode(id) + "/runAntiVirusScan",
                           {{"Comment", flags->comment},
                            {"ScanType", flags->full ? "Full" : "Quick"}});
    if ((exit_code = r.exit_code) != 0) return;
    const std::string action_id = Field(r.body, "id");
    if (flags->no_wait) {
      if (!PrintJsonIfAsked(ctx, r.body)) {
        ctx.out << "action " << action_id << ": RunAntiVirusScan " << Field(r.body, "computerDnsName")
                << " is " << Field(r.body, "status") << "\n";
      }
      return;
    }
    ctx.err << "scan " << action_id << " requested on " << Field(r.body, "computerDnsName") << "\n";
    exit_code = FollowScan(ctx, action_id, flags->wait_seconds);
  });
}

}  // namespace quell::cli
