#include "agent/actions/restrict_execution.h"

namespace quell::agent {
namespace {

Result<RestrictionMode> RequestedMode(const nlohmann::json& parameters) {
  if (!parameters.is_object()) {
    return InvalidArgument("RestrictCodeExecution parameters must be an object");
  }
  for (const auto& [key, value] : parameters.items()) {
    if ((key == "Comment" || key == "Mode") && value.is_string()) continue;
    return InvalidArgument("RestrictCodeExecution: unexpected parameter '" + key + "'");
  }
  auto it = parameters.find("Mode");
  if (it == parameters.end()) return RestrictionMode::kEnforce;
  const std::string name = it->get<std::string>();
  if (name != "Enforce" && name != "Audit") {
    return InvalidArgument("RestrictCodeExecution: Mode must be Enforce or Audit, not '" + name + "'");
  }
  return ParseRestrictionMode(name);
}

}  // namespace

const ActionSpec& RestrictExecutionAction::Spec() const {
  static const ActionSpec spec{
      .type = "RestrictCodeExecution",
      .undo_type = "UnrestrictCodeExecution",
      .description =
          "Allows only programs installed by the OS package manager and unmodified, programs "
          "whose SHA-256 is on the allow-list, and the agent itself; every other execution is "
          "denied (Audit: reported, not denied) and reported as a detection. Survives agent "
          "restarts.",
      .risk = "high",
      .parameters_schema =
          {{"type", "object"},
           {"properties",
            {{"Mode", {{"type", "string"}, {"enum", {"Enforce", "Audit"}}, {"default", "Enforce"}}},
             {"Comment", {{"type", "string"}}}}},
           {"additionalProperties", false}},
  };
  return spec;
}

Status RestrictExecutionAction::Validate(const nlohmann::json& parameters) const {
  return RequestedMode(parameters).status();
}

Result<nlohmann::json> RestrictExecutionAction::Run(ActionContext& ctx) {
  QUELL_ASSIGN_OR_RETURN(RestrictionMode mode, RequestedMode(ctx.parameters));
  ctx.report_progress(10, "restricting code execution (" + std::string(RestrictionModeName(mode)) + ")");
  return controller_.Restrict(mode);
}

Result<nlohmann::json> RestrictExecutionAction::Undo(ActionContext& ctx) {
  ctx.report_progress(10, "removing the code execution restriction");
  return controller_.Unrestrict();
}

}  // namespace quell::agent
