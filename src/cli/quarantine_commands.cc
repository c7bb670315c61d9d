// quell machine quarantine <machine> --sha256|--sha1 <hash> [--path P]: StopAndQuarantineFile.
// quell file sightings <hash>: where a file was seen. quell file quarantine <hash>: the
// fleet-wide stop-and-quarantine on every device that has it.
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "cli/table.h"

namespace quell::cli {
namespace {

struct QuarantineFlags {
  struct {
    std::string machine, sha256, sha1, path, comment;
    bool wait = false;
    int wait_seconds = 300;
  } machine;
  std::string sightings_hash;
  struct {
    std::string hash, comment;
    bool wait = false;
    int wait_seconds = 300;
  } fleet;
};

}  // namespace

// REQUIRES: AddMachineCommands ran first (adds under `machine`).
void AddQuarantineCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  auto flags = std::make_shared<QuarantineFlags>();

  auto* q = app.get_subcommand("machine")->add_subcommand(
      "quarantine",
      "Stop and quarantine a file: kill what runs it, remove its persistence, vault it "
      "(undo: quell actions undo <action id>)");
  auto& m = flags->machine;
  q->add_option("machine", m.machine, "Machine id or computer name")->required();
  auto* hash = q->add_option_group("hash", "The file, by one of its hashes");
  hash->add_option("--sha256", m.sha256, "SHA-256 of the file");
  hash->add_option("--sha1", m.sha1, "SHA-1 of the file");
  hash->require_option(1);
  q->add_option("--path", m.path, "Where the file is known to be (searched first)");
  q->add_option("--comment,-c", m.comment, "Why (recorded in the audit log)")->required();
  q->add_flag("--wait,-w", m.wait, "Wait until the action ends");
  q->add_option("--wait-seconds", m.wait_seconds, "How long --wait waits")->capture_default_str();
  q->callback([&ctx, &exit_code, flags] {
    const auto& f = flags->machine;
    nlohmann::json body = {{"Comment", f.comment}};
    if (!f.sha256.empty()) body["Sha256"] = f.sha256;
    if (!f.sha1.empty()) body["Sha1"] = f.sha1;
    if (!f.path.empty()) body["Path"] = f.path;
    exit_code = RequestMachineAction(ctx, f.machine, "StopAndQuarantineFile", body, f.wait,
                                     f.wait_seconds);
  });

  auto* file = app.add_subcommand("file", "Files by hash across the fleet")->require_subcommand(1);

  auto* seen = file->add_subcommand("sightings", "Where a file (SHA-256, SHA-1 or MD5) was seen");
  seen->add_option("hash", flags->sightings_hash, "The file's hash")->required();
  seen->callback([&ctx, &exit_code, flags] {
    CallResult r =
        CallApi(ctx, "GET", "/api/files/" + UrlEncode(flags->sightings_hash) + "/sightings");
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    std::vector<std::vector<std::string>> rows;
    for (const auto& s : r.body["value"]) {
      rows.push_back({Field(s, "computerDnsName"), Field(s, "filePath"), Field(s, "source"),
                      Field(s, "lastSeen"), Field(s, "machineId")});
    }
    ctx.out << RenderTable({"MACHINE", "PATH", "SOURCE", "LAST SEEN", "MACHINE ID"}, rows);
  });

  auto* fq = file->add_subcommand(
      "quarantine", "Stop and quarantine a file on every device where it was seen");
  auto& fl = flags->fleet;
  fq->add_option("hash", fl.hash, "SHA-256 or SHA-1 of the file")->required();
  fq->add_option("--comment,-c", fl.comment, "Why (recorded in the audit log)")->required();
  fq->add_flag("--wait,-w", fl.wait, "Wait until every action ends");
  fq->add_option("--wait-seconds", fl.wait_seconds, "How long --wait waits for each")
      ->capture_default_str();
  fq->callback([&ctx, &exit_code, flags] {
    const auto& f = flags->fleet;
    CallResult r = CallApi(ctx, "POST", "/api/files/" + UrlEncode(f.hash) + "/stopAndQuarantine",
                           {{"Comment", f.comment}});
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    for (const auto& a : r.body["value"]) PrintActionLine(ctx, a);
    for (const auto& s : r.body["skipped"]) {
      ctx.err << "skipped " << Field(s, "machineId") << ": " << Field(s, "reason") << "\n";
    }
    if (!f.wait) return;
    for (const auto& a : r.body["value"]) {
      if (int code = WaitForAction(ctx, a["id"], f.wait_seconds); code != 0) exit_code = code;
    }
  });
}

}  // namespace quell::cli
