#include "agent/actions/builtin_actions.h"

#include <memory>

#include "agent/actions/diagnostic_noop.h"
#include "agent/actions/isolate.h"
#include "agent/actions/restrict_execution.h"
#include "agent/actions/run_antivirus_scan.h"

namespace quell::agent {

void RegisterBuiltinActions(ActionRegistry& registry, const BuiltinActionDeps& deps) {
  registry.Register(std::make_unique<DiagnosticNoopAction>(deps.detections));
  if (deps.isolation != nullptr) registry.Register(std::make_unique<IsolateAction>(*deps.isolation));
  if (deps.restriction != nullptr) {
    registry.Register(std::make_unique<RestrictExecutionAction>(*deps.restriction));
  }
  if (deps.scan != nullptr) {
    registry.Register(std::make_unique<RunAntiVirusScanAction>(*deps.scan, deps.detections));
  }
}

}  // namespace quell::agent
