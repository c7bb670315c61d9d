// quell machine restrict | unrestrict: RestrictCodeExecution / UnrestrictCodeExecution.
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"

namespace quell::cli {
namespace {

struct RestrictionFlags {
  std::string machine, comment;
  bool audit = false, wait = false;
  int wait_seconds = 120;
};

void AddFlags(CLI::App* cmd, RestrictionFlags& f) {
  cmd->add_option("machine", f.machine, "Machine id or computer name")->required();
  cmd->add_flag("--wait,-w", f.wait, "Wait until the action ends");
  cmd->add_option("--wait-seconds", f.wait_seconds, "How long --wait waits")->capture_default_str();
}

}  // namespace

// REQUIRES: AddMachineCommands ran first (adds under `machine`).
void AddRestrictionCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  CLI::App* machine = app.get_subcommand("machine");
  auto restrict_flags = std::make_shared<RestrictionFlags>();
  auto unrestrict_flags = std::make_shared<RestrictionFlags>();
  unrestrict_flags->comment = "Unrestricted with the quell CLI";

  auto* res = machine->add_subcommand(
      "restrict", "Allow only unmodified package binaries and allow-listed hashes to run");
  AddFlags(res, *restrict_flags);
  res->add_option("--comment,-c", restrict_flags->comment, "Why (recorded in the audit log)")
      ->required();
  res->add_flag("--audit", restrict_flags->audit,
                "Report what would be blocked without blocking (Mode Audit)");
  res->callback([&ctx, &exit_code, restrict_flags] {
    nlohmann::json body = {{"Comment", restrict_flags->comment}};
    if (restrict_flags->audit) body["Mode"] = "Audit";
    exit_code = RequestMachineAction(ctx, restrict_flags->machine, "restrictCodeExecution", body,
                                     restrict_flags->wait, restrict_flags->wait_seconds);
  });

  auto* unres = machine->add_subcommand("unrestrict", "Let every program run again");
  AddFlags(unres, *unrestrict_flags);
  unres->add_option("--comment,-c", unrestrict_flags->comment, "Why (recorded in the audit log)")
      ->capture_default_str();
  unres->callback([&ctx, &exit_code, unrestrict_flags] {
    exit_code = RequestMachineAction(ctx, unrestrict_flags->machine, "unrestrictCodeExecution",
                                     {{"Comment", unrestrict_flags->comment}},
                                     unrestrict_flags->wait, unrestrict_flags->wait_seconds);
  });
}

}  // namespace quell::cli
