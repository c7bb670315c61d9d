#include "agent/actions/stop_and_quarantine_file.h"

#include <algorithm>

namespace quell::agent {
namespace {

bool IsHex(const std::string& s, size_t len) {
  return s.size() == len && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

Result<quarantine::QuarantineRequest> ParseRequest(const nlohmann::json& parameters) {
  if (!parameters.is_object()) return InvalidArgument("StopAndQuarantineFile parameters must be an object");
  quarantine::QuarantineRequest r;
  for (const auto& [key, value] : parameters.items()) {
    if (key != "Comment" && key != "Sha1" && key != "Sha256" && key != "Path") {
      return InvalidArgument("StopAndQuarantineFile: unexpected parameter '" + key + "'");
    }
    if (!value.is_string()) return InvalidArgument("StopAndQuarantineFile: '" + key + "' must be a string");
  }
  if (parameters.contains("Sha1") == parameters.contains("Sha256")) {
    return InvalidArgument("StopAndQuarantineFile: exactly one of 'Sha1' or 'Sha256' is required");
  }
  if (parameters.contains("Sha1")) {
    r.sha1 = parameters["Sha1"].get<std::string>();
    if (!IsHex(r.sha1, 40)) return InvalidArgument("StopAndQuarantineFile: 'Sha1' must be 40 hex digits");
  } else {
    r.sha256 = parameters["Sha256"].get<std::string>();
    if (!IsHex(r.sha256, 64)) return InvalidArgument("StopAndQuarantineFile: 'Sha256' must be 64 hex digits");
  }
  if (parameters.contains("Path")) {
    r.path_hint = parameters["Path"].get<std::string>();
    if (!r.path_hint.starts_with('/')) return InvalidArgument("StopAndQuarantineFile: 'Path' must be absolute");
  }
  return r;
}

}  // namespace

const ActionSpec& StopAndQuarantineFileAction::Spec() const {
  static const ActionSpec spec{
      .type = "StopAndQuarantineFile",
      .undo_type = "",  // undone by RestoreQuarantinedFile {"QuarantineActionId": <this id>}
      .description =
          "Finds the file with this hash (running executables, persistence, quick-scan "
          "locations, the given Path), kills the processes running it and their descendants, "
          "removes persistence that starts it (cron, systemd, rc.local, shell profiles, "
          "authorized_keys command=, ld.so.preload, XDG autostart, udev RUN) and moves it into "
          "the encrypted quarantine; its hash is blocked from executing. Undo: "
          "RestoreQuarantinedFile.",
      .risk = "high",
      .parameters_schema =
          {{"type", "object"},
           {"properties",
            {{"Sha1", {{"type", "string"}, {"pattern", "^[0-9a-fA-F]{40}$"}}},
             {"Sha256", {{"type", "string"}, {"pattern", "^[0-9a-fA-F]{64}$"}}},
             {"Path", {{"type", "string"}}},
             {"Comment", {{"type", "string"}}}}},
           {"additionalProperties", false}},
  };
  return spec;
}

Status StopAndQuarantineFileAction::Validate(const nlohmann::json& parameters) const {
  return ParseRequest(parameters).status();
}

Result<nlohmann::json> StopAndQuarantineFileAction::Run(ActionContext& ctx) {
  QUELL_ASSIGN_OR_RETURN(quarantine::QuarantineRequest request, ParseRequest(ctx.parameters));
  request.id = ctx.action_id;
  ctx.report_progress(5, "looking for the file");
  return quarantine_.StopAndQuarantine(request);
}

}  // namespace quell::agent
