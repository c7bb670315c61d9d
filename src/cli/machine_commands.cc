// quell machines list | machine show | isolate | release | offboard
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "cli/table.h"

namespace quell::cli {
namespace {

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "-";
}

void PrintAction(CliContext& ctx, const nlohmann::json& action) {
  if (ctx.json) {
    ctx.out << action.dump(2) << "\n";
    return;
  }
  ctx.out << "action " << Str(action, "id") << ": " << Str(action, "type") << " "
          << Str(action, "computerDnsName") << " is " << Str(action, "status") << "\n";
}

// Shared shape of isolate/release/...: POST the action, print it, optionally wait.
int RequestAction(CliContext& ctx, const std::string& machine, const std::string& route,
                  nlohmann::json body, bool wait, int wait_seconds) {
  std::string id = ResolveMachineId(ctx, machine);
  if (id.empty()) return kExitApiError;
  CallResult r = CallApi(ctx, "POST", "/api/machines/" + UrlEncode(id) + "/" + route, body);
  if (r.exit_code != 0) return r.exit_code;
  PrintAction(ctx, r.body);
  return wait ? WaitForAction(ctx, r.body["id"], wait_seconds) : 0;
}

}  // namespace

void AddMachineCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  auto* machines = app.add_subcommand("machines", "List devices")->require_subcommand(1);
  machines->add_subcommand("list", "List devices with health and isolation state")
      ->callback([&ctx, &exit_code] {
        CallResult r = CallApi(ctx, "GET", "/api/machines");
        if ((exit_code = r.exit_code) != 0) return;
        if (ctx.json) {
          ctx.out << r.body.dump(2) << "\n";
          return;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& m : r.body["value"]) {
          rows.push_back({Str(m, "id"), Str(m, "computerDnsName"), Str(m, "osPlatform"),
                          Str(m, "lastIpAddress"), Str(m, "healthStatus"), Str(m, "lastSeen"),
                          Str(m, "isolationState")});
        }
        ctx.out << RenderTable({"ID", "NAME", "OS", "IP", "HEALTH", "LAST SEEN", "ISOLATION"},
                               rows);
      });

  auto* machine = app.add_subcommand("machine", "Act on one device (by id or name)")
                      ->require_subcommand(1);

  auto* show = machine->add_subcommand("show", "Show a device");
  static std::string show_id;
  show->add_option("machine", show_id, "Machine id or computer name")->required();
  show->callback([&ctx, &exit_code] {
    std::string id = ResolveMachineId(ctx, show_id);
    if (id.empty()) {
      exit_code = kExitApiError;
      return;
    }
    CallResult r = CallApi(ctx, "GET", "/api/machines/" + UrlEncode(id));
    if ((exit_code = r.exit_code) != 0) return;
    if (ctx.json) {
      ctx.out << r.body.dump(2) << "\n";
      return;
    }
    for (const char* key : {"id", "computerDnsName", "osPlatform", "osVersion", "version",
                            "lastIpAddress", "agentVersion", "healthStatus", "onboardingStatus",
                            "isolationState", "firstSeen", "lastSeen"}) {
      ctx.out << key << ": " << Str(r.body, key) << "\n";
    }
  });

  struct ActionFlags {
    std::string machine, comment;
    bool selective = false, wait = false;
    int wait_seconds = 120;
  };
  static ActionFlags isolate, release, offboard;

  auto* iso = machine->add_subcommand("isolate", "Cut a device off the network (keeps its link to Quell)");
  iso->add_option("machine", isolate.machine, "Machine id or computer name")->required();
  iso->add_option("--comment,-c", isolate.comment, "Why (recorded in the audit log)")->required();
  iso->add_flag("--selective", isolate.selective,
                "Also allow the agent's configured isolation.selective_allow destinations");
  iso->add_flag("--wait,-w", isolate.wait, "Wait until the action ends");
  iso->add_option("--wait-seconds", isolate.wait_seconds, "How long --wait waits")->capture_default_str();
  iso->callback([&ctx, &exit_code] {
    exit_code = RequestAction(
        ctx, isolate.machine, "isolate",
        {{"Comment", isolate.comment}, {"IsolationType", isolate.selective ? "Selective" : "Full"}},
        isolate.wait, isolate.wait_seconds);
  });

  auto* rel = machine->add_subcommand("release", "Release a device from isolation");
  rel->add_option("machine", release.machine, "Machine id or computer name")->required();
  rel->add_option("--comment,-c", release.comment, "Why (recorded in the audit log)")
      ->default_str("Released with the quell CLI");
  release.comment = "Released with the quell CLI";
  rel->add_flag("--wait,-w", release.wait, "Wait until the action ends");
  rel->add_option("--wait-seconds", release.wait_seconds, "How long --wait waits")->capture_default_str();
  rel->callback([&ctx, &exit_code] {
    exit_code = RequestAction(ctx, release.machine, "unisolate", {{"Comment", release.comment}},
                              release.wait, release.wait_seconds);
  });

  auto* off = machine->add_subcommand(
      "offboard", "Revoke a device's certificate: its agent can no longer connect (admin)");
  off->add_option("machine", offboard.machine, "Machine id or computer name")->required();
  off->add_option("--comment,-c", offboard.comment, "Why (recorded in the audit log)")->required();
  off->callback([&ctx, &exit_code] {
    exit_code = RequestAction(ctx, offboard.machine, "offboard", {{"Comment", offboard.comment}},
                              false, 0);
  });
}

}  // namespace quell::cli
