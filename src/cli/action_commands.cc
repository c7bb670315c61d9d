// quell actions list | show | cancel | types
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "cli/table.h"

namespace quell::cli {
namespace {

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "-";
}

// OData string literal: quotes doubled.
std::string Quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

}  // namespace

void AddActionCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  auto* actions = app.add_subcommand("actions", "Machine actions (the action center)")
                      ->require_subcommand(1);

  struct ListFlags {
    std::string status, machine, type;
    int top = 50;
  };
  static ListFlags list_flags;
  auto* list = actions->add_subcommand("list", "List actions, newest first");
  list->add_option("--status", list_flags.status,
                   "Pending, InProgress, Succeeded, Failed, TimeOut or Cancelled");
  list->add_option("--machine", list_flags.machine, "Machine id");
  list->add_option("--type", list_flags.type, "Action type, e.g. Isolate");
  list->add_option("--top", list_flags.top, "How many")->capture_default_str()->check(CLI::Range(1, 10000));
  list->callback([&ctx, &exit_code] {
    std::vector<std::string> terms;
    if (!list_flags.status.empty()) terms.push_back("status eq " + Quote(list_flags.status));
    if (!list_flags.machine.empty()) terms.push_back("machineId eq " + Quote(list_flags.machine));
    if (!list_flags.type.empty()) terms.push_back("type eq " + Quote(list_flags.type));
    std::string filter;
    for (const auto& t : terms) filter += (filter.empty() ? "" : " and ") + t;
    std::string target = "/api/machineactions?$top=" + std::to_string(list_flags.top);
    if (!filter.empty()) target += "&$filter=" + UrlEncode(filter);
    CallResult r = CallApi(ctx, "GET", target);
    if ((exit_code = r.exit_code) != 0) return;
    if (ctx.json) {
      ctx.out << r.body.dump(2) << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& a : r.body["value"]) {
      rows.push_back({Str(a, "id"), Str(a, "type"), Str(a, "scope"), Str(a, "status"),
                      Str(a, "computerDnsName"), Str(a, "requestor"),
                      Str(a, "creationDateTimeUtc")});
    }
    ctx.out << RenderTable({"ID", "TYPE", "SCOPE", "STATUS", "MACHINE", "REQUESTOR", "CREATED"},
                           rows);
  });

  static std::string show_id;
  auto* show = actions->add_subcommand("show", "Show one action");
  show->add_option("id", show_id, "Action id")->required();
  show->callback([&ctx, &exit_code] {
    CallResult r = CallApi(ctx, "GET", "/api/machineactions/" + UrlEncode(show_id));
    if ((exit_code = r.exit_code) != 0) return;
    if (ctx.json) {
      ctx.out << r.body.dump(2) << "\n";
      return;
    }
    for (const char* key : {"id", "type", "scope", "status", "statusMessage", "machineId",
                            "computerDnsName", "requestor", "requestorComment",
                            "creationDateTimeUtc", "lastUpdateDateTimeUtc",
                            "expirationDateTimeUtc", "cancellationRequestor",
                            "cancellationComment"}) {
      ctx.out << key << ": " << Str(r.body, key) << "\n";
    }
    if (r.body.contains("result") && !r.body["result"].empty()) {
      ctx.out << "result: " << r.body["result"].dump() << "\n";
    }
  });

  static std::string cancel_id, cancel_comment = "Cancelled with the quell CLI";
  auto* cancel = actions->add_subcommand("cancel", "Cancel an action that has not finished");
  cancel->add_option("id", cancel_id, "Action id")->required();
  cancel->add_option("--comment,-c", cancel_comment, "Why")->capture_default_str();
  cancel->callback([&ctx, &exit_code] {
    CallResult r = CallApi(ctx, "POST", "/api/machineactions/" + UrlEncode(cancel_id) + "/cancel",
                           {{"Comment", cancel_comment}});
    if ((exit_code = r.exit_code) != 0) return;
    if (ctx.json) {
      ctx.out << r.body.dump(2) << "\n";
    } else if (Str(r.body, "status") == "Cancelled") {
      ctx.out << "action " << cancel_id << " cancelled\n";
    } else {
      ctx.out << "action " << cancel_id << " is " << Str(r.body, "status")
              << "; the agent has been asked to stop\n";
    }
  });

  actions->add_subcommand("types", "List the action types this server accepts")
      ->callback([&ctx, &exit_code] {
        CallResult r = CallApi(ctx, "GET", "/api/actiontypes");
        if ((exit_code = r.exit_code) != 0) return;
        if (ctx.json) {
          ctx.out << r.body.dump(2) << "\n";
          return;
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& t : r.body["value"]) {
          rows.push_back({Str(t, "type"), Str(t, "route"), Str(t, "undoType"), Str(t, "risk"),
                          Str(t, "minimumRole")});
        }
        ctx.out << RenderTable({"TYPE", "ROUTE", "UNDO", "RISK", "ROLE"}, rows);
      });
}

}  // namespace quell::cli
