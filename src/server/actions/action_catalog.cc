#include "server/actions/action_catalog.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace quell::server {
namespace {

constexpr size_t kMaxCommentLength = 4000;

// Checks that `body` has only `allowed` keys and a usable Comment; fills the common fields.
Result<ParsedActionBody> ParseCommon(const nlohmann::json& body, std::set<std::string> allowed) {
  allowed.insert({"Comment", "ExternalId"});
  for (const auto& [key, value] : body.items()) {
    if (!allowed.contains(key)) return InvalidArgument("unknown field '" + key + "'");
  }
  ParsedActionBody out;
  auto comment = body.find("Comment");
  if (comment == body.end() || !comment->is_string() || comment->get<std::string>().empty()) {
    return InvalidArgument("'Comment' is required and must be a non-empty string");
  }
  out.comment = comment->get<std::string>();
  if (out.comment.size() > kMaxCommentLength) {
    return InvalidArgument("'Comment' is longer than " + std::to_string(kMaxCommentLength) +
                           " characters");
  }
  if (auto ext = body.find("ExternalId"); ext != body.end()) {
    if (!ext->is_string()) return InvalidArgument("'ExternalId' must be a string");
    out.external_id = ext->get<std::string>();
  }
  return out;
}

Result<ParsedActionBody> ParseCommentOnly(const nlohmann::json& body) {
  return ParseCommon(body, {});
}

Result<ParsedActionBody> ParseIsolate(const nlohmann::json& body) {
  QUELL_ASSIGN_OR_RETURN(ParsedActionBody out, ParseCommon(body, {"IsolationType"}));
  std::string type = "Full";
  if (auto it = body.find("IsolationType"); it != body.end()) {
    if (!it->is_string()) return InvalidArgument("'IsolationType' must be a string");
    type = it->get<std::string>();
  }
  if (type == "UnManagedDevice") {
    return InvalidArgument(
        "'IsolationType' UnManagedDevice (contain device) is not supported yet; use Full or "
        "Selective");
  }
  if (type != "Full" && type != "Selective") {
    return InvalidArgument("'IsolationType' must be 'Full' or 'Selective', not '" + type + "'");
  }
  out.scope = type;
  out.agent_parameters = {{"IsolationType", type}};
  return out;
}

Result<ParsedActionBody> ParseScan(const nlohmann::json& body) {
  QUELL_ASSIGN_OR_RETURN(ParsedActionBody out, ParseCommon(body, {"ScanType"}));
  auto it = body.find("ScanType");
  if (it == body.end()) return InvalidArgument("'ScanType' is required: 'Quick' or 'Full'");
  if (!it->is_string() || (*it != "Quick" && *it != "Full")) {
    return InvalidArgument("'ScanType' must be 'Quick' or 'Full', not " + it->dump());
  }
  out.scope = it->get<std::string>();
  out.agent_parameters = {{"ScanType", out.scope}};
  return out;
}

// DiagnosticNoop: an optional boolean EmitTestDetection, passed to the agent when true.
Result<ParsedActionBody> ParseDiagnosticNoop(const nlohmann::json& body) {
  QUELL_ASSIGN_OR_RETURN(ParsedActionBody out, ParseCommon(body, {"EmitTestDetection"}));
  if (auto it = body.find("EmitTestDetection"); it != body.end()) {
    if (!it->is_boolean()) return InvalidArgument("'EmitTestDetection' must be a boolean");
    if (it->get<bool>()) out.agent_parameters = {{"EmitTestDetection", true}};
  }
  return out;
}

Result<ParsedActionBody> ParseRestrict(const nlohmann::json& body) {
  QUELL_ASSIGN_OR_RETURN(ParsedActionBody out, ParseCommon(body, {"Mode"}));
  std::string mode = "Enforce";
  if (auto it = body.find("Mode"); it != body.end()) {
    if (!it->is_string() || (*it != "Enforce" && *it != "Audit")) {
      return InvalidArgument("'Mode' must be 'Enforce' or 'Audit', not " + it->dump());
    }
    mode = it->get<std::string>();
  }
  out.agent_parameters = {{"Mode", mode}};
  return out;
}

nlohmann::json CommentSchema(nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json props = {{"Comment", {{"type", "string"}, {"maxLength", kMaxCommentLength}}},
                          {"ExternalId", {{"type", "string"}}}};
  props.update(extra);
  return {{"type", "object"},
          {"required", {"Comment"}},
          {"additionalProperties", false},
          {"properties", props}};
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

const std::vector<ActionTypeSpec>& ActionCatalog() {
  static const std::vector<ActionTypeSpec> catalog = {
      {.type = "Isolate",
       .route = "isolate",
       .title = "Isolate device",
       .description = "Cuts the device off the network except for its link to Quell. Full: "
                      "nothing else; Selective: also the destinations in the agent's "
                      "isolation.selective_allow list.",
       .conflict_group = "isolation",
       .undo_type = "Unisolate",
       .risk = "high",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema(
           {{"IsolationType", {{"type", "string"}, {"enum", {"Full", "Selective"}}}}}),
       .parse_body = ParseIsolate},
      {.type = "Unisolate",
       .route = "unisolate",
       .title = "Release device from isolation",
       .description = "Removes network isolation.",
       .conflict_group = "isolation",
       .undo_type = "",
       .risk = "medium",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema(),
       .parse_body = ParseCommentOnly},
      {.type = "RestrictCodeExecution",
       .route = "restrictCodeExecution",
       .title = "Restrict app execution",
       .description = "Only binaries installed and unmodified by the OS package manager, the "
                      "agent itself and allow-listed hashes may run; anything else is denied "
                      "and reported.",
       .conflict_group = "restriction",
       .undo_type = "UnrestrictCodeExecution",
       .risk = "high",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema(
           {{"Mode", {{"type", "string"}, {"enum", {"Enforce", "Audit"}}}}}),
       .parse_body = ParseRestrict},
      {.type = "UnrestrictCodeExecution",
       .route = "unrestrictCodeExecution",
       .title = "Remove app restriction",
       .description = "Lets every binary run again.",
       .conflict_group = "restriction",
       .undo_type = "",
       .risk = "medium",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema(),
       .parse_body = ParseCommentOnly},
      {.type = "RunAntiVirusScan",
       .route = "runAntiVirusScan",
       .title = "Run antivirus scan",
       .description = "Scans with ClamAV databases and YARA rules. Quick: running programs, "
                      "persistence locations, temp and download directories; Full: every "
                      "local filesystem.",
       .conflict_group = "scan",
       .undo_type = "",
       .risk = "low",
       .min_role = Role::kResponder,
       .body_schema = [] {
         nlohmann::json schema =
             CommentSchema({{"ScanType", {{"type", "string"}, {"enum", {"Quick", "Full"}}}}});
         schema["required"].push_back("ScanType");
         return schema;
       }(),
       .parse_body = ParseScan},
      {.type = "DiagnosticNoop",
       .route = "diagnosticNoop",
       .title = "Diagnostic no-op",
       .description = "Does nothing on the device and succeeds; proves the action path end "
                      "to end and is what the load benchmark measures. EmitTestDetection: "
                      "the agent also reports one Informational test detection (an alert).",
       .conflict_group = "",
       .undo_type = "",
       .risk = "low",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema({{"EmitTestDetection", {{"type", "boolean"}}}}),
       .parse_body = ParseDiagnosticNoop},
  };
  return catalog;
}

const ActionTypeSpec* FindActionType(std::string_view type) {
  for (const auto& spec : ActionCatalog()) {
    if (spec.type == type) return &spec;
  }
  return nullptr;
}

const ActionTypeSpec* FindActionRoute(std::string_view route) {
  std::string lower = Lower(route);
  for (const auto& spec : ActionCatalog()) {
    if (Lower(spec.route) == lower) return &spec;
  }
  return nullptr;
}

nlohmann::json DescribeActionType(const ActionTypeSpec& spec) {
  return {{"type", spec.type},
          {"route", "/api/machines/{id}/" + spec.route},
          {"title", spec.title},
          {"description", spec.description},
          {"undoType", spec.undo_type.empty() ? nlohmann::json(nullptr)
                                              : nlohmann::json(spec.undo_type)},
          {"risk", spec.risk},
          {"minimumRole", RoleName(spec.min_role)},
          {"bodySchema", spec.body_schema}};
}

}  // namespace quell::server
