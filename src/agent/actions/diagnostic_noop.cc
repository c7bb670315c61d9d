#include "agent/actions/diagnostic_noop.h"

namespace quell::agent {

const ActionSpec& DiagnosticNoopAction::Spec() const {
  static const ActionSpec spec{
      .type = "DiagnosticNoop",
      .undo_type = "",
      .description = "Does nothing and succeeds; proves the action path end to end.",
      .risk = "low",
      .parameters_schema = {{"type", "object"}, {"additionalProperties", false}},
  };
  return spec;
}

Status DiagnosticNoopAction::Validate(const nlohmann::json& parameters) const {
  if (!parameters.is_object() || !parameters.empty()) {
    return InvalidArgument("DiagnosticNoop takes no parameters");
  }
  return Status::Ok();
}

Result<nlohmann::json> DiagnosticNoopAction::Run(ActionContext& ctx) {
  (void)ctx;
  return nlohmann::json{{"noop", true}};
}

}  // namespace quell::agent
