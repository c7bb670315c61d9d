// quell alerts list | show | update
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "cli/table.h"

namespace quell::cli {
namespace {

// What CLI11 parses the options of these commands into.
struct AlertCommandFlags {
  struct {
    std::string status, severity, machine, order_by = "lastActivity desc";
    int top = 50;
  } list;
  std::string show_id;
  struct {
    std::string id;
    std::optional<std::string> status, assign_to, classification, determination, comment;
  } update;
};

void PrintAlert(CliContext& ctx, const nlohmann::json& a) {
  PrintFields(ctx, a,
              {"id", "title", "severity", "status", "classification", "determination",
               "category", "detectionSource", "detectorId", "threatName", "machineId",
               "computerDnsName", "firstActivity", "lastActivity", "createdDateTime",
               "lastUpdateDateTime", "resolvedDateTime", "assignedTo"});
  if (a.contains("eventCount")) ctx.out << "eventCount: " << a["eventCount"].dump() << "\n";
  if (a.contains("mitreTechniques") && !a["mitreTechniques"].empty()) {
    ctx.out << "mitreTechniques: " << a["mitreTechniques"].dump() << "\n";
  }
  if (!Field(a, "description").empty() && Field(a, "description") != "-") {
    ctx.out << "description: " << Field(a, "description") << "\n";
  }
  if (a.contains("evidence")) {
    ctx.out << "evidence:\n";
    for (const auto& e : a["evidence"]) ctx.out << "  " << e.dump() << "\n";
  }
  if (a.contains("comments") && !a["comments"].empty()) {
    ctx.out << "comments:\n";
    for (const auto& c : a["comments"]) {
      ctx.out << "  " << Field(c, "createdDateTime") << " " << Field(c, "createdBy") << ": "
              << Field(c, "comment") << "\n";
    }
  }
}

}  // namespace

void AddAlertCommands(CLI::App& app, CliContext& ctx, int& exit_code) {
  auto* alerts = app.add_subcommand("alerts", "Alerts raised from what agents detect")
                     ->require_subcommand(1);
  // Owned by the callbacks below, which the App keeps as long as it parses and runs them.
  auto flags = std::make_shared<AlertCommandFlags>();

  auto* list = alerts->add_subcommand("list", "List alerts, most recently active first");
  list->add_option("--status", flags->list.status, "New, InProgress or Resolved");
  list->add_option("--severity", flags->list.severity,
                   "UnSpecified, Informational, Low, Medium or High");
  list->add_option("--machine", flags->list.machine, "Machine id or computer name");
  list->add_option("--order-by", flags->list.order_by,
                   "lastActivity, createdDateTime or severity, then asc or desc")
      ->capture_default_str();
  list->add_option("--top", flags->list.top, "How many")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  list->callback([&ctx, &exit_code, flags] {
    const auto& f = flags->list;
    std::vector<std::pair<std::string, std::string>> terms = {{"status", f.status}};
    terms.emplace_back("severity", f.severity);
    if (!f.machine.empty()) {
      std::string id = ResolveMachineId(ctx, f.machine);
      if (id.empty()) {
        exit_code = kExitApiError;
        return;
      }
      terms.emplace_back("machineId", id);
    }
    std::string target = "/api/alerts?$top=" + std::to_string(f.top);
    target += ODataFilterParameter(terms);
    if (!f.order_by.empty()) target += "&$orderby=" + UrlEncode(f.order_by);
    CallResult r = CallApi(ctx, "GET", target);
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    std::vector<std::vector<std::string>> rows;
    for (const auto& a : r.body["value"]) {
      rows.push_back({Field(a, "id"), Field(a, "severity"), Field(a, "status"),
                      Field(a, "computerDnsName"), Field(a, "title"),
                      a.contains("eventCount") ? a["eventCount"].dump() : "-",
                      Field(a, "lastActivity")});
    }
    ctx.out << RenderTable({"ID", "SEVERITY", "STATUS", "MACHINE", "TITLE", "EVENTS",
                            "LAST ACTIVITY"},
                           rows);
  });

  auto* show = alerts->add_subcommand("show", "Show one alert with its evidence");
  show->add_option("id", flags->show_id, "Alert id")->required();
  show->callback([&ctx, &exit_code, flags] {
    CallResult r = CallApi(ctx, "GET", "/api/alerts/" + UrlEncode(flags->show_id));
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    PrintAlert(ctx, r.body);
  });

  auto* update = alerts->add_subcommand("update", "Change an alert's status, owner or verdict");
  update->add_option("id", flags->update.id, "Alert id")->required();
  update->add_option("--status", flags->update.status, "New, InProgress or Resolved");
  update->add_option("--assign-to", flags->update.assign_to, "Owner (empty to clear)");
  update->add_option("--classification", flags->update.classification,
                     "TruePositive, InformationalExpectedActivity or FalsePositive");
  update->add_option("--determination", flags->update.determination,
                     "e.g. Malware, SecurityTesting, Clean, Other");
  update->add_option("--comment,-c", flags->update.comment, "A comment to add");
  update->callback([&ctx, &exit_code, flags] {
    const auto& f = flags->update;
    nlohmann::json body = nlohmann::json::object();
    if (f.status) body["status"] = *f.status;
    if (f.assign_to) body["assignedTo"] = *f.assign_to;
    if (f.classification) body["classification"] = *f.classification;
    if (f.determination) body["determination"] = *f.determination;
    if (f.comment) body["comment"] = *f.comment;
    if (body.empty()) {
      ctx.err << "error: nothing to update; give --status, --assign-to, --classification, "
                 "--determination or --comment\n";
      exit_code = kExitApiError;
      return;
    }
    CallResult r = CallApi(ctx, "PATCH", "/api/alerts/" + UrlEncode(f.id), body);
    if ((exit_code = r.exit_code) != 0) return;
    if (PrintJsonIfAsked(ctx, r.body)) return;
    ctx.out << "alert " << f.id << " updated: " << Field(r.body, "status");
    if (Field(r.body, "assignedTo") != "-") {
      ctx.out << ", assigned to " << Field(r.body, "assignedTo");
    }
    ctx.out << "\n";
  });
}

}  // namespace quell::cli
