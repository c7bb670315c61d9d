// quell machine collect <machine> [-o file.zip]: collects an investigation package, follows
// the collection, then downloads the package with progress and checks its SHA-256.
// quell actions package <action-id> [-o file.zip]: downloads the package of an earlier
// collection again (each call gets a fresh short-lived link).
#include <cctype>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/action_progress.h"
#include "cli/api_client.h"
#include "cli/cli_context.h"
#include "cli/downloads.h"

namespace quell::cli {
namespace {

struct CollectFlags {
  std::string machine;
  std::string action_id;
  std::string output;
  std::string comment = "Investigation package requested with the quell CLI";
  bool no_wait = false;
  bool force = false;
  int wait_seconds = 3600;
};

// Gets a link for the package of `action_id`, downloads it to `output` (a default name when
// empty) and checks its digest. Returns the exit code.
int DownloadPackage(CliContext& ctx, const std::string& action_id, std::string output, bool force,
                    const nlohmann::json& action) {
  CallResult uri = CallApi(ctx, "GET", "/api/machineactions/" + UrlEncode(action_id) + "/getPackageUri");
  if (uri.exit_code != 0) return uri.exit_code;
  const std::string target = LinkTarget(Field(uri.body, "value"));
  if (target.empty()) {
    ctx.err << "error: the server returned no usable link\n";
    return kExitApiError;
  }
  if (output.empty()) {
    output = Field(action, "computerDnsName") + "_Investigation_Package_" + action_id.substr(0, 8) + ".zip";
    for (char& c : output) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') c = '_';
    }
  }
  std::error_code ec;
  if (!force && std::filesystem::exists(output, ec)) {
    ctx.err << "error: " << output << " exists; choose another -o or add --force\n";
    return kExitApiError;
  }
  ApiClient* client = Client(ctx);
  if (client == nullptr) return kExitTransport;
  const std::string expected = Field(uri.body, "sha256");
  VerifiedDownload got = DownloadVerified(ctx, *client, target, output, "downloading", expected);
  switch (got.outcome) {
    case VerifiedDownload::Outcome::kSaved:
      break;
    case VerifiedDownload::Outcome::kTransportError:
      ctx.err << "error: " << got.error << "\n";
      return kExitTransport;
    case VerifiedDownload::Outcome::kRefused:
      ctx.err << "error: " << got.error << "\n";
      return kExitApiError;
    case VerifiedDownload::Outcome::kDigestMismatch:
      ctx.err << "error: the downloaded package does not match its SHA-256 " << expected
              << "; it was removed. Try again.\n";
      return kExitApiError;
  }
  if (PrintJsonIfAsked(ctx, {{"file", output}, {"sha256", got.hashes.sha256},
                             {"size", got.hashes.size}, {"action", action}})) {
    return 0;
  }
  const nlohmann::json& result = action.contains("result") ? action["result"] : nlohmann::json();
  ctx.out << "package saved to " << output << " (" << HumanSize(got.hashes.size) << ", sha256 "
          << got.hashes.sha256 << ")\n";
  if (result.is_object()) {
    ctx.out << result.value("artifactCount", 0) << " files collected, "
            << result.value("failureCount", 0) << " items not collected (see "
            << "CollectionSummaryReport.html inside)";
    if (!result.value("complete", true)) {
      ctx.out << "; INCOMPLETE: stopped at the " << result.value("incompleteReason", "?");
    }
    ctx.out << "\n";
  }
  return 0;
}

}  // namespace

void AddCollectCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  auto flags = std::make_shared<CollectFlags>();
  auto* collect = app.get_subcommand("machine")->add_subcommand(
      "collect", "Collect an investigation package and download it");
  collect->add_option("machine", flags->machine, "Machine id or computer name")->required();
  collect->add_option("-o,--output", flags->output,
                      "Where to save the zip (default: <name>_Investigation_Package_<id>.zip)");
  collect->add_option("--comment,-c", flags->comment, "Why (recorded in the audit log)")
      ->capture_default_str();
  collect->add_flag("--force", flags->force, "Overwrite the output file if it exists");
  collect->add_flag("--no-wait", flags->no_wait,
                    "Print the action and return at once (download later with quell actions package)");
  collect->add_option("--wait-seconds", flags->wait_seconds, "How long to follow the collection")
      ->capture_default_str();
  collect->callback([&ctx, &exit_code, flags] {
    std::string id = ResolveMachineId(ctx, flags->machine);
    if (id.empty()) {
      exit_code = kExitApiError;
      return;
    }
    CallResult r = CallApi(ctx, "POST", "/api/machines/" + UrlEncode(id) + "/collectInvestigationPackage",
                           {{"Comment", flags->comment}});
    if ((exit_code = r.exit_code) != 0) return;
    const std::string action_id = Field(r.body, "id");
    if (flags->no_wait) {
      if (!PrintJsonIfAsked(ctx, r.body)) PrintActionLine(ctx, r.body);
      return;
    }
    ctx.err << "collection " << action_id << " requested on " << Field(r.body, "computerDnsName") << "\n";
    nlohmann::json action;
    exit_code = FollowActionProgress(ctx, action_id, flags->wait_seconds, "collection", action);
    if (exit_code != 0) return;
    if (Field(action, "status") != "Succeeded") {
      ctx.err << "error: collection " << action_id << " " << Field(action, "status") << ": "
              << Field(action, "statusMessage") << "\n";
      exit_code = kExitApiError;
      return;
    }
    exit_code = DownloadPackage(ctx, action_id, flags->output, flags->force, action);
  });

  auto* package = app.get_subcommand("actions")->add_subcommand(
      "package", "Download the investigation package of a collection");
  package->add_option("action", flags->action_id, "CollectInvestigationPackage action id")->required();
  package->add_option("-o,--output", flags->output, "Where to save the zip");
  package->add_flag("--force", flags->force, "Overwrite the output file if it exists");
  package->callback([&ctx, &exit_code, flags] {
    CallResult r = CallApi(ctx, "GET", "/api/machineactions/" + UrlEncode(flags->action_id));
    if ((exit_code = r.exit_code) != 0) return;
    exit_code = DownloadPackage(ctx, flags->action_id, flags->output, flags->force, r.body);
  });
}

}  // namespace quell::cli
