#include "server/actions/action_catalog.h"

#include "server/blobs/blob_names.h"

#include <algorithm>
#include <map>
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

// CollectFile (Defender's "Collect file", as an action of its own): Path, Sha256 or both. With
// only Sha256 the route fills in the newest path the device was seen with it; with both the
// device refuses a file at Path whose digest is not Sha256.
Result<ParsedActionBody> ParseCollectFile(const nlohmann::json& body) {
  QUELL_ASSIGN_OR_RETURN(ParsedActionBody out, ParseCommon(body, {"Path", "Sha256"}));
  auto path = body.find("Path");
  auto sha = body.find("Sha256");
  if (path == body.end() && sha == body.end()) {
    return InvalidArgument("'Path' (an absolute path on the device) or 'Sha256' (64 hex digits "
                           "of a file seen on the device) is required");
  }
  if (path != body.end()) {
    if (!path->is_string() || !path->get<std::string>().starts_with("/")) {
      return InvalidArgument("'Path' must be an absolute path");
    }
    if (path->get<std::string>().size() > 4096) {
      return InvalidArgument("'Path' is longer than 4096 characters");
    }
    out.agent_parameters["Path"] = *path;
  }
  if (sha != body.end()) {
    if (!sha->is_string() || sha->get<std::string>().size() != 64 ||
        !IsHex(sha->get<std::string>())) {
      return InvalidArgument("'Sha256' must be 64 hex digits");
    }
    out.agent_parameters["Sha256"] = LowerHex(sha->get<std::string>());
    if (path == body.end()) out.path_from_sightings_of = LowerHex(sha->get<std::string>());
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

// The characters a RunScript argument string may not hold: they would mean something to a
// shell, and a script that passes its arguments on to one must not be made to run more.
constexpr std::string_view kForbiddenArgChars = ";&|!$`<>\n\r";
constexpr size_t kMaxLiveResponseCommands = 20;

// LiveResponse (Defender's runliveresponse): Commands of PutFile, RunScript, GetFile, in that
// order, each {"type", "params": [{"key", "value"}]}.
Result<ParsedActionBody> ParseLiveResponse(const nlohmann::json& body) {
  QUELL_ASSIGN_OR_RETURN(ParsedActionBody out, ParseCommon(body, {"Commands"}));
  auto commands = body.find("Commands");
  if (commands == body.end() || !commands->is_array() || commands->empty() ||
      commands->size() > kMaxLiveResponseCommands) {
    return InvalidArgument("'Commands' is required: an array of 1-" +
                           std::to_string(kMaxLiveResponseCommands) +
                           " commands of type PutFile, RunScript or GetFile");
  }
  static const std::map<std::string, std::pair<int, std::set<std::string>>> kTypes = {
      {"PutFile", {0, {"FileName"}}},
      {"RunScript", {1, {"ScriptName", "Args"}}},
      {"GetFile", {2, {"Path"}}},
  };
  nlohmann::json normalized = nlohmann::json::array();
  int last_rank = 0;
  for (size_t i = 0; i < commands->size(); ++i) {
    const nlohmann::json& c = (*commands)[i];
    const std::string where = "command " + std::to_string(i);
    if (!c.is_object() || !c.contains("type") || !c["type"].is_string()) {
      return InvalidArgument(where + ": an object with 'type' and 'params' is required");
    }
    const std::string type = c["type"];
    auto spec = kTypes.find(type);
    if (spec == kTypes.end()) {
      return InvalidArgument(where + ": type must be PutFile, RunScript or GetFile, not '" + type +
                             "'");
    }
    if (spec->second.first < last_rank) {
      return InvalidArgument(where + " (" + type +
                             "): commands must come in the order PutFile, RunScript, GetFile");
    }
    last_rank = spec->second.first;
    std::map<std::string, std::string> params;
    const nlohmann::json* list = c.contains("params") ? &c["params"] : nullptr;
    if (list != nullptr && !list->is_array()) return InvalidArgument(where + ": 'params' must be an array");
    for (const auto& p : list != nullptr ? *list : nlohmann::json::array()) {
      if (!p.is_object() || !p.contains("key") || !p["key"].is_string() || !p.contains("value") ||
          !p["value"].is_string()) {
        return InvalidArgument(where + ": each param is {\"key\": string, \"value\": string}");
      }
      const std::string key = p["key"];
      if (!spec->second.second.contains(key) || params.contains(key)) {
        return InvalidArgument(where + " (" + type + "): unexpected or repeated param '" + key + "'");
      }
      params[key] = p["value"];
    }
    nlohmann::json out_params = nlohmann::json::array();
    if (type == "PutFile" || type == "RunScript") {
      const char* key = type == "PutFile" ? "FileName" : "ScriptName";
      auto name = params.find(key);
      if (name == params.end() || !IsPlainName(name->second, 128)) {
        return InvalidArgument(where + " (" + type + "): '" + key +
                               "' must name a library file: 1-128 letters, digits, '-', '_' or "
                               "'.', not starting with '.'");
      }
      out.library_files.push_back(name->second);
      out.min_role = Role::kAdmin;
      out_params.push_back({{"key", key}, {"value", name->second}});
    }
    if (auto args = params.find("Args"); args != params.end()) {
      if (args->second.size() > 1024) return InvalidArgument(where + ": 'Args' is longer than 1024");
      if (size_t bad = args->second.find_first_of(kForbiddenArgChars); bad != std::string::npos) {
        return InvalidArgument(where + " (RunScript): 'Args' may not contain '" +
                               (args->second[bad] == '\n' ? std::string("\\n")
                                : args->second[bad] == '\r' ? std::string("\\r")
                                                            : std::string(1, args->second[bad])) +
                               "' (forbidden: ; & | ! $ ` < > and line breaks)");
      }
      out_params.push_back({{"key", "Args"}, {"value", args->second}});
    }
    if (type == "GetFile") {
      auto path = params.find("Path");
      if (path == params.end() || !path->second.starts_with('/') || path->second.size() > 4096 ||
          path->second.find('\0') != std::string::npos) {
        return InvalidArgument(where + " (GetFile): 'Path' must be an absolute path on the device");
      }
      out_params.push_back({{"key", "Path"}, {"value", path->second}});
    }
    normalized.push_back({{"type", type}, {"params", std::move(out_params)}});
  }
  std::sort(out.library_files.begin(), out.library_files.end());
  out.library_files.erase(std::unique(out.library_files.begin(), out.library_files.end()),
                          out.library_files.end());
  out.agent_parameters = {{"Commands", std::move(normalized)}};
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
      {.type = "CollectFile",
       .route = "collectFile",
       .title = "Collect file",
       .description = "Streams a file from the device to the server (resumable, checked by "
                      "SHA-256, up to 3 GB), where GET /api/files/{sha256} describes it and "
                      "POST /api/files/{sha256}/download returns it in a zip encrypted with a "
                      "password the analyst chooses. Devices, fifos, sockets and /proc, /sys "
                      "and /dev are refused; a file that changes while it is sent fails.",
       .conflict_group = "",
       .undo_type = "",
       .risk = "low",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema(
           {{"Path", {{"type", "string"}}},
            {"Sha256", {{"type", "string"}, {"pattern", "^[0-9a-fA-F]{64}$"}}}}),
       .parse_body = ParseCollectFile},
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
      {.type = "LiveResponse",
       .route = "runliveresponse",
       .title = "Run live response",
       .description = "Runs commands on the device, in order: PutFile (a library file into the "
                      "agent's working directory, removed when the agent restarts), RunScript (a "
                      "library script with arguments; 10-minute limit), GetFile (collect a file "
                      "from the device). The first failure stops the rest. PutFile and RunScript "
                      "need the admin role. Results: "
                      "GET /api/machineactions/{id}/GetLiveResponseResultDownloadLink(index=N).",
       .conflict_group = "liveresponse",
       .conflict_error_code = "ActiveRequestAlreadyExists",
       .undo_type = "",
       .risk = "high",
       .min_role = Role::kResponder,
       .body_schema = CommentSchema(
           {{"Commands",
             {{"type", "array"},
              {"minItems", 1},
              {"maxItems", kMaxLiveResponseCommands},
              {"items",
               {{"type", "object"},
                {"required", {"type"}},
                {"properties",
                 {{"type", {{"type", "string"}, {"enum", {"PutFile", "RunScript", "GetFile"}}}},
                  {"params",
                   {{"type", "array"},
                    {"items",
                     {{"type", "object"},
                      {"properties",
                       {{"key", {{"type", "string"},
                                 {"enum", {"FileName", "ScriptName", "Args", "Path"}}}},
                        {"value", {{"type", "string"}}}}}}}}}}}}}}}}),
       .parse_body = ParseLiveResponse},
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
