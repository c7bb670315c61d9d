// The scan itself: every file goes once through libclamav and YARA, on a pool of
// low-priority threads held under a CPU ceiling, with progress and prompt cancellation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "agent/scan/clamav_engine.h"
#include "agent/scan/scan_cache.h"
#include "agent/scan/scan_targets.h"
#include "agent/scan/yara_rules.h"
#include "common/hash.h"
#include "common/status.h"

namespace quell::agent::scan {

// Both engines, loaded together and immutable afterwards; shared by concurrent scans.
struct ScanEngines {
  ClamEngine clam;
  YaraRules yara;
  // Changes whenever any database or rule file changes (names, sizes, mtimes): the scan
  // cache trusts only verdicts made with the same version.
  std::string signature_version;
  std::vector<std::string> warnings;  // missing dirs, rule files that did not compile

  // Loads both. FailedPrecondition when neither yields a single signature or rule: a scan
  // that cannot detect anything must not report "no threats found".
  static Result<std::shared_ptr<const ScanEngines>> Load(const std::vector<std::string>& clam_dirs,
                                                         const std::vector<std::string>& yara_dirs,
                                                         const ClamLimits& limits);
};

// Cheap fingerprint of the database and rule files, used to decide whether to reload.
std::string SignatureVersion(const std::vector<std::string>& clam_dirs,
                             const std::vector<std::string>& yara_dirs);

struct ScanHit {
  std::string detector_id;  // "quell.av.clamav" | "quell.av.yara"
  std::string threat_name;  // ClamAV signature name or YARA rule identifier
  std::string path;         // the file as reported (deleted executables: their old path)
  std::string member_path;  // inside an archive; empty otherwise
  std::string sha256;       // of the whole file
  uint64_t size = 0;
};

struct ScanProgress {
  uint64_t files_total = 0;
  uint64_t files_done = 0;
  uint64_t bytes_total = 0;
  uint64_t bytes_done = 0;
  uint64_t detections = 0;
  int64_t elapsed_ms = 0;
  int64_t remaining_ms = -1;  // estimate; -1 until there is something to estimate from
};

struct ScanSummary {
  uint64_t files_scanned = 0;   // passed through the engines
  uint64_t files_cached = 0;    // skipped: unchanged since a clean scan
  uint64_t files_too_large = 0;
  uint64_t files_failed = 0;    // vanished, unreadable, or an engine error
  uint64_t bytes_scanned = 0;
  std::vector<ScanHit> hits;
  int64_t duration_ms = 0;
};

struct ScannerOptions {
  uint32_t threads = 0;             // 0: one per online CPU (max 32, YARA's limit)
  uint32_t cpu_limit_percent = 50;  // of the whole machine; 100 disables the throttle
  uint64_t max_file_bytes = 100ull << 20;
  int yara_timeout_seconds = 60;
  bool lower_priority = true;       // nice 19 + idle I/O class on the scan threads
  int progress_interval_ms = 500;
  // File-hash indicators; empty: not consulted. When set, every file read also gets its
  // SHA-256, SHA-1 and MD5 (one pass over the bytes already in memory) and is matched; a
  // returned hit is counted and reported like an engine hit (sha256 and size filled in).
  // Called on scan threads.
  std::function<std::optional<ScanHit>(const FileHashes& hashes, const std::string& path)>
      match_hashes;
  // Appended to the engines' signature version in the scan cache, so that files known clean
  // are scanned again once it changes (the indicators' version).
  std::string cache_version_suffix;
};

// Runs one scan over `files`. `on_hit` is called from scan threads as each hit is found;
// `on_progress` from the calling thread about every progress_interval_ms and once at the
// end. Returns Cancelled (with the partial work discarded) when `stop` fires; files being
// scanned at that moment finish (bounded by max_file_bytes), nothing new starts.
Result<ScanSummary> RunScan(const ScanEngines& engines, const std::vector<FileItem>& files,
                            const ScannerOptions& options, ScanCache* cache,
                            const std::function<void(const ScanHit&)>& on_hit,
                            const std::function<void(const ScanProgress&)>& on_progress,
                            std::stop_token stop);

// Sets the calling thread to nice 19 and the idle I/O scheduling class. Best effort.
void LowerCurrentThreadPriority();

// Keeps one thread's CPU use at or below `share` of one core (0 < share <= 1) by sleeping
// between work items; the sleep ends early when `stop` fires.
class DutyCycleThrottle {
 public:
  explicit DutyCycleThrottle(double share);
  void Pace(std::stop_token stop);

 private:
  double share_;
  int64_t window_wall_start_ns_ = 0;
  int64_t window_cpu_start_ns_ = 0;
};

}  // namespace quell::agent::scan
