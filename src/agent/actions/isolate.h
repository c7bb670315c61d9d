// Isolate / Unisolate: cuts the host off the network except for the server link (and, for
// Selective, a configured allow-list); Undo releases it. See IsolationController.
#pragma once

#include "agent/actions/action.h"
#include "agent/isolation/isolation_controller.h"

namespace quell::agent {

class IsolateAction final : public Action {
 public:
  // `controller` must outlive the action.
  explicit IsolateAction(IsolationController& controller) : controller_(controller) {}

  const ActionSpec& Spec() const override;
  // Parameters: {"IsolationType": "Full" | "Selective"} (default Full); "Comment" (a
  // string) is tolerated because the server forwards the request body as it came.
  Status Validate(const nlohmann::json& parameters) const override;
  Result<nlohmann::json> Run(ActionContext& ctx) override;
  Result<nlohmann::json> Undo(ActionContext& ctx) override;

 private:
  IsolationController& controller_;
};

}  // namespace quell::agent
