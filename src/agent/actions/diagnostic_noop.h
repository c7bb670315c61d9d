// DiagnosticNoop: succeeds at once and changes nothing. It exercises the whole action path
// (REST -> server -> stream -> agent -> result) and is what the load benchmark measures.
//
// With {"EmitTestDetection": true} it also reports one Informational detection (detector
// "quell.diagnostic", evidence: this device) through the agent's DetectionSink, which proves
// the detection path (spool -> server -> alert) without any scanner.
#pragma once

#include "agent/actions/action.h"
#include "agent/detect/detection.h"

namespace quell::agent {

class DiagnosticNoopAction final : public Action {
 public:
  // `detections` may be nullptr: EmitTestDetection then fails the action (it cannot do what
  // was asked). Must outlive the action.
  explicit DiagnosticNoopAction(DetectionSink* detections = nullptr) : detections_(detections) {}

  const ActionSpec& Spec() const override;
  Status Validate(const nlohmann::json& parameters) const override;
  Result<nlohmann::json> Run(ActionContext& ctx) override;

 private:
  DetectionSink* detections_;
};

// The detection EmitTestDetection reports for the host named `host_name`. Pure.
Detection DiagnosticTestDetection(const std::string& host_name, const std::string& action_id);

}  // namespace quell::agent
