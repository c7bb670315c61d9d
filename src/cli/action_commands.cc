// quell actions list | show | cancel | undo | types
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "cli/table.h"

namespace quell::cli {
namespace {

// What CLI11 parses the options of these commands into.
struct ActionCommandFlags {
  struct {
    std::string status, machine, type;
    int top = 50;
  } list;
  std::string show_id;
  std::string cancel_id, cancel_comment = "Cancelled with the quell CLI";
  struct {
    std::string id, comment;
    bool wait = false;
    int wait_seconds = 300;
  } undo;
};

}  // namespace

void AddActionCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  auto* actions = app.add_subcommand("actions", "Machine actions (the action center)")
                      ->require_subcommand(1);
  // Owned by the callbacks below, which the App keeps as long as it parses and runs them.
  auto flags = std::make_shared<ActionCommandFlags>();

  auto* list = actions->add_subcommand("list", "List actions, newest first");
  list->add_option("--status", flags->list.status,
                   "Pending, InProgress, Succeeded, Failed, TimeOut or Cancelled");
  list->add_option("--machine", flags->list.machine, "Machine id");
  list->add_option("--type", flags->list.type, "Action type, e.g. Isolate");
  list->add_option("--top", flags->list.top, "How many")->capture_default_str()->check(CLI::Range(1, 10000));
  list->callback([&ctx, &exit_code, flags] {
    const auto& f = flags->list;
    std::vector<std::pair<std::string, std::string>> terms = {
        {"status", f.status}, {"machineId", f.machine}, {"type", f.type}};
    std::string target = "/api/machineactions?$top=" + std::to_string(f.top);
    target += ODataFilterParameter(terms);
    CallResult r = CallApi(ctx, "GET", target);
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    std::vector<std::vector<std::string>> rows;
    for (const auto& a : r.body["value"]) {
      rows.push_back({Field(a, "id"), Field(a, "type"), Field(a, "scope"), Field(a, "status"),
                      Field(a, "computerDnsName"), Field(a, "requestor"),
                      Field(a, "creationDateTimeUtc")});
    }
    ctx.out << RenderTable({"ID", "TYPE", "SCOPE", "STATUS", "MACHINE", "REQUESTOR", "CREATED"},
                           rows);
  });

  auto* show = actions->add_subcommand("show", "Show one action");
  show->add_option("id", flags->show_id, "Action id")->required();
  show->callback([&ctx, &exit_code, flags] {
    CallResult r = CallApi(ctx, "GET", "/api/machineactions/" + UrlEncode(flags->show_id));
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    PrintFields(ctx, r.body,
                {"id", "type", "scope", "status", "statusMessage", "machineId", "computerDnsName",
                 "requestor", "requestorComment", "creationDateTimeUtc", "lastUpdateDateTimeUtc",
                 "expirationDateTimeUtc", "cancellationRequestor", "cancellationComment"});
    if (r.body.contains("result") && !r.body["result"].empty()) {
      ctx.out << "result: " << r.body["result"].dump() << "\n";
    }
  });

  auto* cancel = actions->add_subcommand("cancel", "Cancel an action that has not finished");
  cancel->add_option("id", flags->cancel_id, "Action id")->required();
  cancel->add_option("--comment,-c", flags->cancel_comment, "Why")->capture_default_str();
  cancel->callback([&ctx, &exit_code, flags] {
    const std::string& id = flags->cancel_id;
    CallResult r = CallApi(ctx, "POST", "/api/machineactions/" + UrlEncode(id) + "/cancel",
                           {{"Comment", flags->cancel_comment}});
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    if (Field(r.body, "status") == "Cancelled") {
      ctx.out << "action " << id << " cancelled\n";
    } else {
      ctx.out << "action " << id << " is " << Field(r.body, "status")
              << "; the agent has been asked to stop\n";
    }
  });

  auto* undo = actions->add_subcommand(
      "undo", "Reverse a Succeeded action (release, unrestrict, restore quarantined files)");
  undo->add_option("id", flags->undo.id, "Action id")->required();
  undo->add_option("--comment,-c", flags->undo.comment, "Why (recorded in the audit log)")
      ->required();
  undo->add_flag("--wait,-w", flags->undo.wait, "Wait until the undo ends");
  undo->add_option("--wait-seconds", flags->undo.wait_seconds, "How long --wait waits")
      ->capture_default_str();
  undo->callback([&ctx, &exit_code, flags] {
    const auto& f = flags->undo;
    CallResult r = CallApi(ctx, "POST", "/api/machineactions/" + UrlEncode(f.id) + "/undo",
                           {{"Comment", f.comment}});
    if ((exit_code = r.exit_code) != 0) return;
    if (!PrintJsonIfAsked(ctx, r.body)) PrintActionLine(ctx, r.body);
    if (f.wait) exit_code = WaitForAction(ctx, r.body["id"], f.wait_seconds);
  });

  actions->add_subcommand("types", "List the action types this server accepts")
      ->callback([&ctx, &exit_code] {
        CallResult r = CallApi(ctx, "GET", "/api/actiontypes");
        if ((exit_code = r.exit_code) != 0) return;
        if (PrintJsonIfAsked(ctx, r.body)) return;
        std::vector<std::vector<std::string>> rows;
        for (const auto& t : r.body["value"]) {
          rows.push_back({Field(t, "type"), Field(t, "route"), Field(t, "undoType"),
                          Field(t, "risk"), Field(t, "minimumRole")});
        }
        ctx.out << RenderTable({"TYPE", "ROUTE", "UNDO", "RISK", "ROLE"}, rows);
      });
}

}  // namespace quell::cli
