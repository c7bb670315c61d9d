// RunAntiVirusScan: scans the device with libclamav and YARA (Quick: running executables,
// persistence locations, temp dirs and homes; Full: every local filesystem) and reports each
// hit as a Detection. The result lists counts, duration and the detections. With
// ScanIndicatorHooks, every file scanned is also matched against the file-hash indicators:
// Block, BlockAndRemediate and Audit matches are hits (detector quell.indicators.file, an
// alert when the indicator has generateAlert), and BlockAndRemediate queues the file for
// stop-and-quarantine.
#pragma once

#include <memory>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "agent/actions/action.h"
#include "agent/detect/detection.h"
#include "agent/indicators/file_indicator_match.h"
#include "agent/scan/scan_cache.h"
#include "agent/scan/scan_settings.h"
#include "agent/scan/scanner.h"
#include "common/clock.h"

namespace quell::agent {

struct ScanIndicatorHooks {
  // The file's path and hashes -> the indicator that applies (hash or, for a signed PE, its
  // certificates: FileIndicatorMatcher); empty: indicators not consulted.
  std::function<std::optional<IndicatorMatch>(const FileToMatch& file)> match_file;
  // Changes whenever the indicators change (files the scan cache knows as clean are matched
  // again after a change). Empty: the cache ignores indicators.
  std::function<uint64_t()> version;
  // A BlockAndRemediate match: queue stop-and-quarantine. Called on a scan thread; must not
  // block.
  std::function<void(const std::string& sha256, const std::string& path, const IndicatorMatch&)>
      remediate;
};

class RunAntiVirusScanAction final : public Action {
 public:
  // `detections` may be nullptr (hits then appear only in the result); it and `clock` must
  // outlive the action. Thread-safe: a second scan while one runs fails with
  // FailedPrecondition instead of doubling the load.
  RunAntiVirusScanAction(scan::ScanSettings settings, DetectionSink* detections,
                         const Clock& clock = SystemClock::Instance(),
                         ScanIndicatorHooks indicators = {});

  const ActionSpec& Spec() const override;
  // Parameters: {"ScanType": "Quick" | "Full"} (default Quick); "Comment" tolerated.
  Status Validate(const nlohmann::json& parameters) const override;
  // Succeeds with {"scanType", "filesScanned", ..., "detections": [...]} whether or not
  // anything was found; Failed when no signature or rule could be loaded; Cancelled when
  // ctx.stop fires.
  Result<nlohmann::json> Run(ActionContext& ctx) override;

  // Where a Full scan reads the mount table; tests point it elsewhere.
  void SetMountInfoPath(std::string path) { mountinfo_path_ = std::move(path); }

 private:
  Result<std::shared_ptr<const scan::ScanEngines>> CurrentEngines();

  const scan::ScanSettings settings_;
  DetectionSink* detections_;
  const Clock& clock_;
  const ScanIndicatorHooks indicators_;
  std::string mountinfo_path_ = "/proc/self/mountinfo";
  std::mutex run_mu_;  // one scan at a time
  std::mutex engines_mu_;
  std::shared_ptr<const scan::ScanEngines> engines_;  // reused while the signatures are unchanged
  scan::ScanCache cache_;
  bool cache_loaded_ = false;
};

// The Detection a scan hit becomes (exposed for tests and for other scanners).
Detection MakeScanDetection(const scan::ScanHit& hit, const std::string& action_id, UnixMillis now);
// The Detection a file-hash indicator match during a scan becomes.
Detection MakeScanIndicatorDetection(const scan::ScanHit& hit, const IndicatorMatch& indicator,
                                     const std::string& action_id, UnixMillis now);

}  // namespace quell::agent
