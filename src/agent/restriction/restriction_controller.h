// RestrictionController: the agent's execution restriction (RestrictCodeExecution). Opens the
// ExecGate on every guarded mount of the agent's mount namespace, answers each permission
// event through ExecPolicy, reports denials to a DetectionSink, persists the mode in
// <state_dir>/restriction.json and re-applies it at start (Restore), like isolation.
//
// Fail-open contract: every permission event is answered. When the file cannot be evaluated
// (fstat/read error) the exec is ALLOWED and counted; if the agent dies, the kernel allows
// every pending and future exec (the fanotify fd closes). Audit mode allows and reports.
//
// File indicators: every exec is also matched against the file indicators (hashes, and
// certificate thumbprints of signed PE files; RestrictionOptions::match_file_indicator). Block/BlockAndRemediate deny the exec in every
// mode (and BlockAndRemediate calls RestrictionOptions::remediate), Audit reports, Allowed
// lets the file run under restriction. With Block indicators present and no restriction,
// SetIndicatorGate(true) opens the gate in "indicators only" mode: only indicators decide,
// the package index is not loaded, each file version is hashed once (the inode-keyed cache).
//
// Thread-safety: public methods are serialised; the events are answered on a worker thread.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/detect/detection.h"
#include "agent/indicators/indicator_set.h"
#include "agent/platform/exec_gate.h"
#include "agent/restriction/exec_policy.h"
#include "common/clock.h"
#include "common/status.h"

namespace quell::agent {

enum class RestrictionMode { kNone, kEnforce, kAudit };
std::string_view RestrictionModeName(RestrictionMode mode);  // "None" | "Enforce" | "Audit"
Result<RestrictionMode> ParseRestrictionMode(std::string_view name);

inline constexpr std::string_view kExecRestrictionDetector = "quell.exec-restriction";
inline constexpr std::string_view kFileIndicatorDetector = "quell.indicators.file";

// The file an indicator-blocked exec was about, for the remediation hook.
struct BlockedFile {
  std::string path, sha256, sha1, md5;
  pid_t pid = 0;
  IndicatorMatch indicator;
};

struct RestrictionOptions {
  std::string state_path;                  // <state_dir>/restriction.json; its dir must exist
  std::vector<std::string> allow_sha256;   // restriction.allow_sha256
  // restriction.require_private_mount_namespace: refuse to enable while the agent shares
  // the mount namespace of PID 1 (a lab agent must never guard the test machine's mounts).
  bool require_private_mount_namespace = false;
  std::string dpkg_info_dir = "/var/lib/dpkg/info";
  std::string mountinfo_path = "/proc/self/mountinfo";
  std::string self_exe = "/proc/self/exe";
  // True when this process is in PID 1's mount namespace. Default compares the inodes of
  // /proc/self/ns/mnt and /proc/1/ns/mnt.
  std::function<Result<bool>()> in_initial_mount_namespace;
  // Reads process facts for evidence; default reads /proc/<pid>. Tests replace it.
  std::function<nlohmann::json(pid_t pid)> describe_process;
  const Clock* clock = nullptr;                       // nullptr = the system clock
  std::chrono::milliseconds report_suppression{60'000};  // same file hash reported once per
  std::chrono::milliseconds wait_slice{200};          // how often the worker checks for stop
  // File indicators consulted on every exec (empty: none). Called on the worker thread with
  // the exec'd file (`fd`, open for reading; pread only, valid for the call) and its lowercase
  // hex digests; must be fast and must not block. The fd lets certificate indicators read a
  // PE file's signature (file_indicator_match.h caches it by SHA-256, so a file version is
  // read once, like the inode-keyed verdict cache hashes it once).
  std::function<std::optional<IndicatorMatch>(int fd, const std::string& sha256,
                                              const std::string& sha1, const std::string& md5)>
      match_file_indicator;
  // Called after a BlockAndRemediate indicator denied an exec (the exec is already denied).
  // Runs on the worker thread: it must queue the work (stop-and-quarantine), not do it.
  std::function<void(const BlockedFile&)> remediate;
};

class RestrictionController {
 public:
  // `gate` must outlive the controller; `sink` may be nullptr (denials are only logged).
  RestrictionController(ExecGate& gate, DetectionSink* sink, RestrictionOptions options);
  ~RestrictionController();  // stops answering and closes the gate (releases every waiter)

  // At agent start: re-applies the persisted mode. NotFound state file = not restricted.
  Status Restore();

  // Enables (or switches the mode of) the restriction and persists it. Idempotent.
  // InvalidArgument for kNone; FailedPrecondition from the namespace guard.
  // Result: {"restrictionMode","restrictedAt","guardedMounts","packageFiles","allowList"}.
  Result<nlohmann::json> Restrict(RestrictionMode mode);

  // Closes the gate and persists "None". Idempotent.
  Result<nlohmann::json> Unrestrict();

  RestrictionMode Current() const;

  // Keeps the gate open for file indicators even while execution is not restricted (true
  // when Block hash indicators exist). Not persisted: the indicators are, and the agent sets
  // this after restoring them. FailedPrecondition from the namespace guard. Idempotent.
  Status SetIndicatorGate(bool on);
  // True while the gate is open (restriction or indicators).
  bool GateOpen() const;

  struct Stats {
    uint64_t allowed = 0, denied = 0, audited = 0, errors_allowed = 0, respond_errors = 0,
             cache_hits = 0, reports = 0, reports_suppressed = 0, marks = 0, overflows = 0,
             indicator_blocked = 0, indicator_audited = 0, indicator_allowed = 0;
  };
  Stats GetStats() const;

 private:
  Status Enable(RestrictionMode mode);  // REQUIRES: mutex_ held, not enabled
  void Disable();                       // REQUIRES: mutex_ held; the indicator gate stays
  Status CheckNamespace() const;
  Status OpenGate(PackageIndex packages);  // REQUIRES: mutex_ held, gate closed
  void CloseGate();                        // REQUIRES: mutex_ held
  void StopWorker();
  void StartWorker();
  Status MarkMounts();
  Status Persist(RestrictionMode mode);
  void Loop(std::stop_token stop);
  void Handle(const ExecRequest& request);
  void Report(const ExecVerdict& verdict, pid_t pid, bool blocked);
  void ReportIndicator(const ExecVerdict& verdict, const IndicatorMatch& m, pid_t pid, bool blocked);
  nlohmann::json Evidence(const ExecVerdict& v, pid_t pid, bool blocked, const std::string& role,
                          const std::string& verdict) const;
  bool Suppressed(const std::string& key, UnixMillis now);
  UnixMillis Now() const;

  ExecGate& gate_;
  DetectionSink* sink_;
  RestrictionOptions options_;

  mutable std::mutex mutex_;
  std::atomic<RestrictionMode> mode_{RestrictionMode::kNone};
  UnixMillis restricted_at_ = 0;
  bool gate_open_ = false;       // guarded by mutex_
  bool indicator_gate_ = false;  // guarded by mutex_
  std::unique_ptr<ExecPolicy> policy_;  // used by the worker only while it runs
  std::jthread worker_;

  mutable std::mutex stats_mutex_;
  Stats stats_;
  std::map<std::string, UnixMillis> last_report_;  // sha256 -> time; worker only
};

}  // namespace quell::agent
