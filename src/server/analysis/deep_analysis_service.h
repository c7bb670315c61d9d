// Deep analysis: runs a sample file in quell-sandbox and keeps the report.
//
//   Request ──> Pending ──(sample on the server)──> InProgress ──> Succeeded (report, verdict)
//                  │  (else a CollectFile action          └──────> Failed (why)
//                  │   brings it from a device first)
//                  └──(that collection failed)──> Failed
//
// One worker thread runs one detonation at a time (the sandbox takes a CPU of its own) and
// checks on analyses waiting for their collection. Everything is in the store, so a restarted
// server picks up where it was: an analysis InProgress when the server stopped runs again.
// A report whose observables match a Block indicator raises an alert on the device the sample
// came from.
//
// Thread-safety: Request may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/status.h"
#include "server/actions/action_center.h"
#include "server/store/store.h"

namespace quell::server {

class AlertService;
class BlobStore;

struct DeepAnalysisOptions {
  std::string sandbox_binary;           // quell-sandbox; empty: deep analysis is unavailable
  std::string work_dir;                 // reports are written here while a sample runs
  std::chrono::seconds sample_time_limit{120};  // the sandbox's wall-clock limit per sample
  uint64_t sample_memory_mb = 512;
  std::chrono::milliseconds poll_interval{500};  // how often waiting analyses are checked
};

struct DeepAnalysisRequest {
  std::string sha256;
  std::string requestor;
  std::string comment;
  std::string machine_id;  // where to collect the sample from when needed; "" = newest sighting
};

// The error message of a Request refused because one is open for the file already.
inline constexpr char kAnalysisInProgress[] = "A deep analysis of this file is already in progress";

class DeepAnalysisService {
 public:
  DeepAnalysisService(Store& store, BlobStore& blobs, ActionCenter& actions,
                      AlertService* alerts, const Clock& clock, DeepAnalysisOptions options);
  ~DeepAnalysisService();  // Stop()

  // Puts analyses the last run left InProgress back to Pending and starts the worker.
  Status Start();
  // Stops a running detonation (the sandbox cleans up) and the worker.
  void Stop();

  // Records a Pending analysis of the file. When the server does not hold it, a CollectFile
  // action is created first (on request.machine_id, or the device that saw it last), and the
  // analysis waits for it. FailedPrecondition(kAnalysisInProgress) when one is open already;
  // NotFound when the file is neither on the server nor seen on a device (or on the device
  // named); Unavailable without a sandbox binary.
  Result<DeepAnalysis> Request(const DeepAnalysisRequest& request);

 private:
  void Work(std::stop_token stop);
  // One pass over the unfinished analyses; runs at most one detonation.
  void Step(std::stop_token stop);
  void Detonate(DeepAnalysis analysis, const SampleFile& sample, std::stop_token stop);
  void Finish(DeepAnalysis& analysis, ActionStatus status, std::string error);
  void RaiseAlertForBlockedObservables(const DeepAnalysis& analysis, const SampleFile& sample,
                                       const nlohmann::json& report);

  Store& store_;
  BlobStore& blobs_;
  ActionCenter& actions_;
  AlertService* alerts_;
  const Clock& clock_;
  const DeepAnalysisOptions options_;

  std::mutex request_mu_;  // makes "none open" and the insert one step
  std::mutex wake_mu_;
  std::condition_variable_any wake_;
  bool woken_ = false;
  std::jthread worker_;
};

}  // namespace quell::server
