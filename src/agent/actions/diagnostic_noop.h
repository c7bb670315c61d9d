// DiagnosticNoop: succeeds at once and changes nothing. It exercises the whole action path
// (REST -> server -> stream -> agent -> result) and is what the load benchmark measures.
#pragma once

#include "agent/actions/action.h"

namespace quell::agent {

class DiagnosticNoopAction final : public Action {
 public:
  const ActionSpec& Spec() const override;
  Status Validate(const nlohmann::json& parameters) const override;
  Result<nlohmann::json> Run(ActionContext& ctx) override;
};

}  // namespace quell::agent
