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
      {.type = "DiagnosticNoop",
       .route = "diagnosticNoop",
       .title = "Diagnostic no-op",
       .description = "Does nothing on the device and succeeds; proves the action path end "
                      "to end and is what the load benchmark measures.",
       .conflict_group = "",
       .undo_type = "",
       .risk = "low",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema(),
       .parse_body = ParseCommentOnly},
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
