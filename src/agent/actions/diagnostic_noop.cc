#include "agent/actions/diagnostic_noop.h"

#include <unistd.h>

namespace quell::agent {

namespace {

constexpr const char* kEmitTestDetection = "EmitTestDetection";

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

}  // namespace

const ActionSpec& DiagnosticNoopAction::Spec() const {
  static const ActionSpec spec{
      .type = "DiagnosticNoop",
      .undo_type = "",
      .description = "Does nothing and succeeds; proves the action path end to end. With "
                     "EmitTestDetection it also reports one Informational test detection.",
      .risk = "low",
      .parameters_schema = {{"type", "object"},
                            {"properties", {{kEmitTestDetection, {{"type", "boolean"}}}}},
                            {"additionalProperties", false}},
  };
  return spec;
}

Status DiagnosticNoopAction::Validate(const nlohmann::json& parameters) const {
  if (!parameters.is_object()) return InvalidArgument("DiagnosticNoop parameters must be an object");
  for (const auto& [key, value] : parameters.items()) {
    if (key != kEmitTestDetection) {
      return InvalidArgument("DiagnosticNoop takes only EmitTestDetection, not '" + key + "'");
    }
    if (!value.is_boolean()) return InvalidArgument("EmitTestDetection must be a boolean");
  }
  return Status::Ok();
}

Detection DiagnosticTestDetection(const std::string& host_name, const std::string& action_id) {
  Detection d;
  d.detector_id = "quell.diagnostic";
  d.title = "Quell diagnostic test detection";
  d.description = "A DiagnosticNoop action asked the agent to report this detection. It proves "
                  "that detections reach the server as alerts; nothing on the device is wrong.";
  d.severity = "Informational";
  d.category = "Diagnostic";
  d.detection_source = "Diagnostic";
  d.threat_name = "";
  d.evidence = nlohmann::json::array({{
      {"@odata.type", "#microsoft.graph.security.deviceEvidence"},
      {"deviceDnsName", host_name},
      {"osPlatform", "Linux"},
      {"roles", nlohmann::json::array()},
      {"verdict", "noThreatsFound"},
      {"remediationStatus", "none"},
  }});
  // One alert per device for repeated test detections within the server's window.
  d.dedup_key = "quell.diagnostic";
  d.action_id = action_id;
  return d;
}

Result<nlohmann::json> DiagnosticNoopAction::Run(ActionContext& ctx) {
  const bool emit = ctx.parameters.is_object() &&
                    ctx.parameters.value(kEmitTestDetection, false);
  if (!emit) return nlohmann::json{{"noop", true}};
  if (detections_ == nullptr) {
    return FailedPrecondition("this agent has no detection sink; cannot emit a test detection");
  }
  // Report returns once the detection is spooled: it is not lost even if the link is down.
  detections_->Report(DiagnosticTestDetection(HostName(), ctx.action_id));
  return nlohmann::json{{"noop", true}, {"testDetection", true}};
}

}  // namespace quell::agent
