#include "server/actions/action_catalog.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

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

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
}

std::string LowerHex(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// StopAndQuarantineFile: Sha1 (as Defender) or Sha256 (a Quell extension), exactly one, and an
// optional absolute Path where the file is known to be (searched first on the device).
Result<ParsedActionBody> ParseStopAndQuarantine(const nlohmann::json& body) {
  QUELL_ASSIGN_OR_RETURN(ParsedActionBody out, ParseCommon(body, {"Sha1", "Sha256", "Path"}));
  auto sha1 = body.find("Sha1");
  auto sha256 = body.find("Sha256");
  if ((sha1 == body.end()) == (sha256 == body.end())) {
    return InvalidArgument("exactly one of 'Sha1' (40 hex digits) or 'Sha256' (64 hex digits) "
                           "is required");
  }
  auto [key, it, length] = sha1 != body.end() ? std::tuple{"Sha1", sha1, size_t{40}}
                                              : std::tuple{"Sha256", sha256, size_t{64}};
  if (!it->is_string() || it->get<std::string>().size() != length ||
      !IsHex(it->get<std::string>())) {
    return InvalidArgument("'" + std::string(key) + "' must be " + std::to_string(length) +
                           " hex digits");
  }
  out.agent_parameters = {{key, LowerHex(it->get<std::string>())}};
  if (auto path = body.find("Path"); path != body.end()) {
    if (!path->is_string() || !path->get<std::string>().starts_with("/")) {
      return InvalidArgument("'Path' must be an absolute path");
    }
    out.agent_parameters["Path"] = *path;
  }
  return out;
}

// RestoreQuarantinedFile: exactly one of QuarantineActionId (the StopAndQuarantineFile action
// whose files and persistence are put back; what POST /api/machineactions/{id}/undo sends) or
// Sha256 (every quarantine of that file on the device, including those the agent made itself
// for a BlockAndRemediate indicator).
Result<ParsedActionBody> ParseRestoreQuarantined(const nlohmann::json& body) {
  QUELL_ASSIGN_OR_RETURN(ParsedActionBody out,
                         ParseCommon(body, {"QuarantineActionId", "Sha256"}));
  auto id = body.find("QuarantineActionId");
  auto sha = body.find("Sha256");
  if ((id == body.end()) == (sha == body.end())) {
    return InvalidArgument("exactly one of 'QuarantineActionId' (the StopAndQuarantineFile "
                           "action to undo) or 'Sha256' (64 hex digits) is required");
  }
  if (id != body.end()) {
    if (!id->is_string() || id->get<std::string>().empty()) {
      return InvalidArgument("'QuarantineActionId' must be a non-empty string");
    }
    out.agent_parameters = {{"QuarantineActionId", *id}};
    return out;
  }
  if (!sha->is_string() || sha->get<std::string>().size() != 64 || !IsHex(sha->get<std::string>())) {
    return InvalidArgument("'Sha256' must be 64 hex digits");
  }
  out.agent_parameters = {{"Sha256", LowerHex(sha->get<std::string>())}};
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
      {.type = "StopAndQuarantineFile",
       .route = "StopAndQuarantineFile",
       .title = "Stop and quarantine file",
       .description = "Finds the file with this hash on the device, kills the processes running "
                      "it, removes persistence that starts it (cron, systemd, rc and profile "
                      "lines, authorized_keys commands, ld.so.preload, XDG autostart, udev) and "
                      "moves it into the agent's encrypted quarantine. Undo restores all of it.",
       .conflict_group = "",
       .undo_type = "RestoreQuarantinedFile",
       .undo_reference_parameter = "QuarantineActionId",
       .risk = "high",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema(
           {{"Sha1", {{"type", "string"}, {"pattern", "^[0-9a-fA-F]{40}$"}}},
            {"Sha256", {{"type", "string"}, {"pattern", "^[0-9a-fA-F]{64}$"}}},
            {"Path", {{"type", "string"}}}}),
       .parse_body = ParseStopAndQuarantine},
      {.type = "RestoreQuarantinedFile",
       .route = "restoreQuarantinedFile",
       .title = "Restore quarantined file",
       .description = "Undoes a StopAndQuarantineFile action: the files come back byte for byte "
                      "with owner, mode and times, and every persistence entry removed is put "
                      "back.",
       .conflict_group = "",
       .undo_type = "",
       .risk = "high",
       .min_role = Role::kResponder,
       .body_schema = [] {
         return CommentSchema({{"QuarantineActionId", {{"type", "string"}}},
                               {"Sha256", {{"type", "string"}, {"pattern", "^[0-9a-fA-F]{64}$"}}}});
       }(),
       .parse_body = ParseRestoreQuarantined},
      {.type = "CollectInvestigationPackage",
       .route = "collectInvestigationPackage",
       .title = "Collect investigation package",
       .description = "Captures the device's state into a zip: autoruns (systemd, cron, rc, "
                      "profiles, ld.so.preload, udev, XDG autostart, authorized_keys), installed "
                      "packages, network connections and configuration, processes with "
                      "executable hashes, scheduled tasks, security logs, services, users and "
                      "groups, logins, system information and temp directories, with a summary "
                      "report. Never password hashes or private keys. Download it with "
                      "GET /api/machineactions/{id}/getPackageUri once it succeeded.",
       .conflict_group = "collect",
       .undo_type = "",
       .risk = "low",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema(),
       .parse_body = ParseCommentOnly},
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
