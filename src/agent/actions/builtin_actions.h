// The one place that says which actions this agent can run.
#pragma once

#include "agent/actions/action_registry.h"
#include "agent/actions/collect_investigation_package.h"
#include "agent/actions/live_response.h"
#include "agent/actions/run_antivirus_scan.h"
#include "agent/detect/detection.h"
#include "agent/isolation/isolation_controller.h"
#include "agent/quarantine/file_quarantine.h"
#include "agent/restriction/restriction_controller.h"
#include "agent/scan/scan_settings.h"

namespace quell::agent {

// What the built-in actions need from the running agent. Held by reference; every member must
// outlive the registry.
struct BuiltinActionDeps {
  IsolationController* isolation = nullptr;  // nullptr: Isolate/Unisolate are not offered
  DetectionSink* detections = nullptr;       // where detectors report; nullptr: none reported
  const scan::ScanSettings* scan = nullptr;  // nullptr: RunAntiVirusScan is not offered
  RestrictionController* restriction = nullptr;  // nullptr: RestrictCodeExecution not offered
  // nullptr: StopAndQuarantineFile / RestoreQuarantinedFile are not offered
  quarantine::FileQuarantine* quarantine = nullptr;
  // File-hash indicators consulted by RunAntiVirusScan (empty hooks: not consulted).
  ScanIndicatorHooks scan_indicators;
  // nullptr or no sender: CollectInvestigationPackage is not offered.
  const CollectPackageOptions* collect = nullptr;
  ArtifactSender send_artifact;  // uploads files that actions produce to the server
  // nullptr, no sender or no fetcher: LiveResponse is not offered.
  const LiveResponseOptions* live = nullptr;
  LibraryFetcher fetch_library;  // fetches library files (LiveResponse PutFile/RunScript)
  // Interactive live response sessions; nullptr: LiveResponse {"Interactive": true} fails.
  live::LiveSessionHost* live_sessions = nullptr;
};

// Registers every built-in action, one line each.
void RegisterBuiltinActions(ActionRegistry& registry, const BuiltinActionDeps& deps);

}  // namespace quell::agent
