// RestrictCodeExecution / UnrestrictCodeExecution: only package-installed unmodified
// binaries, allow-listed hashes and the agent itself may run; Undo lifts it. See
// RestrictionController.
#pragma once

#include "agent/actions/action.h"
#include "agent/restriction/restriction_controller.h"

namespace quell::agent {

class RestrictExecutionAction final : public Action {
 public:
  // `controller` must outlive the action.
  explicit RestrictExecutionAction(RestrictionController& controller) : controller_(controller) {}

  const ActionSpec& Spec() const override;
  // Parameters: {"Mode": "Enforce" | "Audit"} (default Enforce); "Comment" (a string) is
  // tolerated because the server forwards the request body as it came.
  Status Validate(const nlohmann::json& parameters) const override;
  Result<nlohmann::json> Run(ActionContext& ctx) override;
  Result<nlohmann::json> Undo(ActionContext& ctx) override;

 private:
  RestrictionController& controller_;
};

}  // namespace quell::agent
