// quell machine scan <id> [--full] [--comment …] [--no-wait]: runs RunAntiVirusScan and
// follows it with a live progress bar on stderr, then prints a summary of what was found.
#include <unistd.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

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

bool IsFinal(const std::string& status) {
  return status == "Succeeded" || status == "Failed" || status == "Cancelled" ||
         status == "TimeOut" || status == "Rejected" || status == "Expired";
}

// "[#########...........]  42% scanned 120/400 files, ..." redrawn in place on a terminal;
// one line per change otherwise, so logs of a non-interactive run stay readable.
void DrawProgress(std::ostream& err, int percent, const std::string& status,
                  const std::string& message, bool tty) {
  constexpr int kWidth = 30;
  const int filled = std::clamp(percent, 0, 100) * kWidth / 100;
  std::string bar = "[" + std::string(static_cast<size_t>(filled), '#') +
                    std::string(static_cast<size_t>(kWidth - filled), '.') + "]";
  std::string line = bar + " " + std::to_string(percent) + "% " + status +
                     (message.empty() ? "" : " - " + message);
  if (tty) {
    err << "\r\033[K" << line << std::flush;
  } else {
    err << line << "\n";
  }
}

int FollowScan(CliContext& ctx, const std::string& action_id, int timeout_seconds) {
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  std::string last_drawn;
  nlohmann::json action;
  for (;;) {
    CallResult r = CallApi(ctx, "GET", "/api/machineactions/" + UrlEncode(action_id));
    if (r.exit_code != 0) return r.exit_code;
    action = r.body;
    const std::string status = Field(action, "status");
    const int percent = action.value("progressPercent", 0);
    const std::string message = action.contains("statusMessage") && action["statusMessage"].is_string()
                                    ? action["statusMessage"].get<std::string>()
                                    : "";
    const std::string key = std::to_string(percent) + status + message;
    if (key != last_drawn) {
      DrawProgress(ctx.err, IsFinal(status) && status == "Succeeded" ? 100 : percent, status,
                   message, tty);
      last_drawn = key;
    }
    if (IsFinal(status)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      if (tty) ctx.err << "\n";
      ctx.err << "error: the scan did not finish within " << timeout_seconds
              << " s; it continues on the device (quell actions show " << action_id << ")\n";
      return kExitApiError;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (tty) ctx.err << "\n";
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
