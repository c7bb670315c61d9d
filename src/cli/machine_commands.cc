// quell machines list | machine show | isolate | release | offboard
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "cli/table.h"

namespace quell::cli {
namespace {

// What CLI11 parses the options of these commands into.
struct MachineCommandFlags {
  struct Action {
    std::string machine, comment;
    bool selective = false, wait = false;
    int wait_seconds = 120;
  };
  std::string show_id;
  Action isolate, release{.comment = "Released with the quell CLI"}, offboard;
};

}  // namespace

void AddMachineCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  // Owned by the callbacks below, which the App keeps as long as it parses and runs them.
  auto flags = std::make_shared<MachineCommandFlags>();

  auto* machines = app.add_subcommand("machines", "List devices")->require_subcommand(1);
  machines->add_subcommand("list", "List devices with health and isolation state")
      ->callback([&ctx, &exit_code] {
        CallResult r = CallApi(ctx, "GET", "/api/machines");
        if ((exit_code = r.exit_code) != 0) return;
        if (PrintJsonIfAsked(ctx, r.body)) return;
        std::vector<std::vector<std::string>> rows;
        for (const auto& m : r.body["value"]) {
          rows.push_back({Field(m, "id"), Field(m, "computerDnsName"), Field(m, "osPlatform"),
                          Field(m, "lastIpAddress"), Field(m, "healthStatus"),
                          Field(m, "lastSeen"), Field(m, "isolationState")});
        }
        ctx.out << RenderTable({"ID", "NAME", "OS", "IP", "HEALTH", "LAST SEEN", "ISOLATION"},
                               rows);
      });

  auto* machine = app.add_subcommand("machine", "Act on one device (by id or name)")
                      ->require_subcommand(1);

  auto* show = machine->add_subcommand("show", "Show a device");
  show->add_option("machine", flags->show_id, "Machine id or computer name")->required();
  show->callback([&ctx, &exit_code, flags] {
    std::string id = ResolveMachineId(ctx, flags->show_id);
    if (id.empty()) {
      exit_code = kExitApiError;
      return;
    }
    CallResult r = CallApi(ctx, "GET", "/api/machines/" + UrlEncode(id));
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    PrintFields(ctx, r.body,
                {"id", "computerDnsName", "osPlatform", "osVersion", "version", "lastIpAddress",
                 "agentVersion", "healthStatus", "onboardingStatus", "isolationState",
                 "firstSeen", "lastSeen"});
  });

  MachineCommandFlags::Action& isolate = flags->isolate;
  auto* iso = machine->add_subcommand("isolate", "Cut a device off the network (keeps its link to Quell)");
  iso->add_option("machine", isolate.machine, "Machine id or computer name")->required();
  iso->add_option("--comment,-c", isolate.comment, "Why (recorded in the audit log)")->required();
  iso->add_flag("--selective", isolate.selective,
                "Also allow the agent's configured isolation.selective_allow destinations");
  iso->add_flag("--wait,-w", isolate.wait, "Wait until the action ends");
  iso->add_option("--wait-seconds", isolate.wait_seconds, "How long --wait waits")->capture_default_str();
  iso->callback([&ctx, &exit_code, flags] {
    const MachineCommandFlags::Action& f = flags->isolate;
    exit_code = RequestMachineAction(
        ctx, f.machine, "isolate",
        {{"Comment", f.comment}, {"IsolationType", f.selective ? "Selective" : "Full"}}, f.wait,
        f.wait_seconds);
  });

  MachineCommandFlags::Action& release = flags->release;
  auto* rel = machine->add_subcommand("release", "Release a device from isolation");
  rel->add_option("machine", release.machine, "Machine id or computer name")->required();
  rel->add_option("--comment,-c", release.comment, "Why (recorded in the audit log)")
      ->capture_default_str();
  rel->add_flag("--wait,-w", release.wait, "Wait until the action ends");
  rel->add_option("--wait-seconds", release.wait_seconds, "How long --wait waits")->capture_default_str();
  rel->callback([&ctx, &exit_code, flags] {
    const MachineCommandFlags::Action& f = flags->release;
    exit_code = RequestMachineAction(ctx, f.machine, "unisolate", {{"Comment", f.comment}}, f.wait,
                              f.wait_seconds);
  });

  MachineCommandFlags::Action& offboard = flags->offboard;
  auto* off = machine->add_subcommand(
      "offboard", "Revoke a device's certificate: its agent can no longer connect (admin)");
  off->add_option("machine", offboard.machine, "Machine id or computer name")->required();
  off->add_option("--comment,-c", offboard.comment, "Why (recorded in the audit log)")->required();
  off->callback([&ctx, &exit_code, flags] {
    const MachineCommandFlags::Action& f = flags->offboard;
    exit_code = RequestMachineAction(ctx, f.machine, "offboard", {{"Comment", f.comment}}, false, 0);
  });
}

}  // namespace quell::cli
