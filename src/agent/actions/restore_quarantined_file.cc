#include "agent/actions/restore_quarantined_file.h"

namespace quell::agent {
namespace {

struct RestoreTarget {
  std::string action_id;
  std::string sha256;
};

Result<RestoreTarget> ParseTarget(const nlohmann::json& parameters) {
  if (!parameters.is_object()) return InvalidArgument("RestoreQuarantinedFile parameters must be an object");
  for (const auto& [key, value] : parameters.items()) {
    if (key != "Comment" && key != "QuarantineActionId" && key != "Sha256") {
      return InvalidArgument("RestoreQuarantinedFile: unexpected parameter '" + key + "'");
    }
    if (!value.is_string()) return InvalidArgument("RestoreQuarantinedFile: '" + key + "' must be a string");
  }
  if (parameters.contains("QuarantineActionId") == parameters.contains("Sha256")) {
    return InvalidArgument(
        "RestoreQuarantinedFile: exactly one of 'QuarantineActionId' or 'Sha256' is required");
  }
  RestoreTarget t;
  if (parameters.contains("QuarantineActionId")) {
    t.action_id = parameters["QuarantineActionId"].get<std::string>();
    if (!quarantine::IsSafeId(t.action_id)) {
      return InvalidArgument("RestoreQuarantinedFile: 'QuarantineActionId' is not an action id");
    }
  } else {
    t.sha256 = parameters["Sha256"].get<std::string>();
    if (t.sha256.size() != 64 || t.sha256.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return InvalidArgument("RestoreQuarantinedFile: 'Sha256' must be 64 hex digits");
    }
  }
  return t;
}

}  // namespace

const ActionSpec& RestoreQuarantinedFileAction::Spec() const {
  static const ActionSpec spec{
      .type = "RestoreQuarantinedFile",
      .undo_type = "",
      .description =
          "Undoes StopAndQuarantineFile: restores the quarantined file(s) byte for byte with "
          "path, owner, mode, times and extended attributes, puts back every persistence entry "
          "removed, and unblocks the hash. Refuses to overwrite a different file now at the path.",
      .risk = "high",
      .parameters_schema =
          {{"type", "object"},
           {"properties",
            {{"QuarantineActionId", {{"type", "string"}}},
             {"Sha256", {{"type", "string"}, {"pattern", "^[0-9a-fA-F]{64}$"}}},
             {"Comment", {{"type", "string"}}}}},
           {"additionalProperties", false}},
  };
  return spec;
}

Status RestoreQuarantinedFileAction::Validate(const nlohmann::json& parameters) const {
  return ParseTarget(parameters).status();
}

Result<nlohmann::json> RestoreQuarantinedFileAction::Run(ActionContext& ctx) {
  QUELL_ASSIGN_OR_RETURN(RestoreTarget target, ParseTarget(ctx.parameters));
  ctx.report_progress(5, "restoring quarantined file");
  if (!target.action_id.empty()) return quarantine_.Restore(target.action_id);
  return quarantine_.RestoreBySha256(target.sha256);
}

}  // namespace quell::agent
