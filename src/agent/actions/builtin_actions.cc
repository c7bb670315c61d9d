#include "agent/actions/builtin_actions.h"

#include <memory>

#include "agent/actions/collect_file.h"
#include "agent/actions/collect_investigation_package.h"
#include "agent/actions/diagnostic_noop.h"
#include "agent/actions/isolate.h"
#include "agent/actions/live_response.h"
#include "agent/actions/restore_quarantined_file.h"
#include "agent/actions/restrict_execution.h"
#include "agent/actions/run_antivirus_scan.h"
#include "agent/actions/stop_and_quarantine_file.h"

namespace quell::agent {

void RegisterBuiltinActions(ActionRegistry& registry, const BuiltinActionDeps& deps) {
  registry.Register(std::make_unique<DiagnosticNoopAction>(deps.detections));
  if (deps.isolation != nullptr) registry.Register(std::make_unique<IsolateAction>(*deps.isolation));
  if (deps.restriction != nullptr) {
    registry.Register(std::make_unique<RestrictExecutionAction>(*deps.restriction));
  }
  if (deps.scan != nullptr) {
    registry.Register(std::make_unique<RunAntiVirusScanAction>(
        *deps.scan, deps.detections, SystemClock::Instance(), deps.scan_indicators));
  }
  if (deps.quarantine != nullptr) {
    registry.Register(std::make_unique<StopAndQuarantineFileAction>(*deps.quarantine));
    registry.Register(std::make_unique<RestoreQuarantinedFileAction>(*deps.quarantine));
  }
  if (deps.send_artifact) {
    registry.Register(std::make_unique<CollectFileAction>(CollectFileOptions{}, deps.send_artifact));
  }
  if (deps.collect != nullptr && deps.send_artifact) {
    registry.Register(
        std::make_unique<CollectInvestigationPackageAction>(*deps.collect, deps.send_artifact));
  }
  if (deps.live != nullptr && deps.send_artifact && deps.fetch_library) {
    registry.Register(std::make_unique<LiveResponseAction>(*deps.live, deps.send_artifact,
                                                           deps.fetch_library,
                                                           SystemClock::Instance(),
                                                           deps.live_sessions));
  }
}

}  // namespace quell::agent
