#include "server/analysis/deep_analysis_service.h"

#include <filesystem>

#include "common/files.h"
#include "common/ids.h"
#include "common/logging.h"
#include "quell/v1/agent.pb.h"
#include "server/actions/action_catalog.h"
#include "server/actions/file_collection.h"
#include "server/alerts/alert_service.h"
#include "server/analysis/observable_matches.h"
#include "server/analysis/sandbox_process.h"
#include "server/blobs/blob_store.h"

namespace quell::server {
namespace {

const std::shared_ptr<spdlog::logger>& Log() {
  static const auto log = Logger("server.analysis");
  return log;
}

constexpr std::string_view kStagePrefix = "sandbox: ";

bool IsOpen(const DeepAnalysis& a) {
  return a.status == ActionStatus::kPending || a.status == ActionStatus::kInProgress;
}

// The device to collect from: the one named, or the one that saw the file last.
Result<std::string> CollectionDevice(Store& store, const DeepAnalysisRequest& request) {
  if (!request.machine_id.empty()) return request.machine_id;
  constexpr size_t kNewest = 1;
  QUELL_ASSIGN_OR_RETURN(std::vector<FileSighting> newest,
                         store.ListFileSightings(request.sha256, kNewest));
  if (newest.empty() || newest.front().sha256 != request.sha256) {
    return NotFound("file " + request.sha256 +
                    " is not on the server and has not been seen on any device; collect it with "
                    "POST /api/machines/{id}/collectFile, or name the device in 'MachineId'");
  }
  return newest.front().device_id;
}

}  // namespace

DeepAnalysisService::DeepAnalysisService(Store& store, BlobStore& blobs, ActionCenter& actions,
                                         AlertService* alerts, const Clock& clock,
                                         DeepAnalysisOptions options)
    : store_(store),
      blobs_(blobs),
      actions_(actions),
      alerts_(alerts),
      clock_(clock),
      options_(std::move(options)) {}

DeepAnalysisService::~DeepAnalysisService() { Stop(); }

Status DeepAnalysisService::Start() {
  QUELL_RETURN_IF_ERROR(MakeDirs(options_.work_dir));
  QUELL_ASSIGN_OR_RETURN(std::vector<DeepAnalysis> unfinished,
                         store_.ListUnfinishedDeepAnalyses());
  for (DeepAnalysis& a : unfinished) {
    if (a.status != ActionStatus::kInProgress) continue;
    a.status = ActionStatus::kPending;
    a.stage = "queued again after a server restart";
    a.updated = clock_.Now();
    QUELL_RETURN_IF_ERROR(store_.PutDeepAnalysis(a));
  }
  worker_ = std::jthread([this](std::stop_token stop) { Work(stop); });
  return Status::Ok();
}

void DeepAnalysisService::Stop() {
  if (!worker_.joinable()) return;
  worker_.request_stop();
  wake_.notify_all();
  worker_.join();
}

Result<DeepAnalysis> DeepAnalysisService::Request(const DeepAnalysisRequest& request) {
  if (options_.sandbox_binary.empty()) {
    return Unavailable("deep analysis is not available: the server has no quell-sandbox");
  }
  std::lock_guard lock(request_mu_);
  QUELL_ASSIGN_OR_RETURN(std::vector<DeepAnalysis> earlier, store_.ListDeepAnalyses(request.sha256));
  for (const DeepAnalysis& a : earlier) {
    if (IsOpen(a)) return FailedPrecondition(kAnalysisInProgress);
  }
  DeepAnalysis analysis{.id = NewUuid(),
                        .sha256 = request.sha256,
                        .status = ActionStatus::kPending,
                        .requestor = request.requestor,
                        .comment = request.comment,
                        .stage = "queued",
                        .requested = clock_.Now(),
                        .updated = clock_.Now()};
  Result<SampleFile> sample = store_.GetSampleFile(request.sha256);
  if (!sample.ok() && sample.status().code() != StatusCode::kNotFound) return sample.status();
  if (!sample.ok() || !blobs_.Stat(request.sha256).ok()) {
    QUELL_ASSIGN_OR_RETURN(std::string device, CollectionDevice(store_, request));
    QUELL_ASSIGN_OR_RETURN(std::string path, NewestSightedPath(store_, device, request.sha256));
    const ActionTypeSpec* spec = FindActionType("CollectFile");
    QUELL_ASSIGN_OR_RETURN(
        ParsedActionBody body,
        spec->parse_body({{"Comment", "sample for deep analysis " + analysis.id},
                          {"Path", path},
                          {"Sha256", request.sha256}}));
    QUELL_ASSIGN_OR_RETURN(MachineAction collect, actions_.Create({.machine_id = device,
                                                                   .spec = spec,
                                                                   .body = body,
                                                                   .requestor = request.requestor,
                                                                   .request_source = "DeepAnalysis"}));
    analysis.collect_action_id = collect.id;
    analysis.stage = "collecting the sample from " +
                     (collect.computer_dns_name.empty() ? device : collect.computer_dns_name);
  }
  QUELL_RETURN_IF_ERROR(store_.PutDeepAnalysis(analysis));
  QUELL_RETURN_IF_ERROR(store_.AppendAudit(
      {.time = clock_.Now(),
       .actor = request.requestor,
       .operation = "file.deepAnalysis.requested",
       .target = request.sha256,
       .comment = request.comment,
       .details_json = nlohmann::json{{"analysisId", analysis.id},
                                      {"collectActionId", analysis.collect_action_id}}
                           .dump()}));
  {
    std::lock_guard wake_lock(wake_mu_);
    woken_ = true;
  }
  wake_.notify_all();
  return analysis;
}

void DeepAnalysisService::Work(std::stop_token stop) {
  while (!stop.stop_requested()) {
    Step(stop);
    std::unique_lock lock(wake_mu_);
    wake_.wait_for(lock, stop, options_.poll_interval, [this] { return woken_; });
    woken_ = false;
  }
}

void DeepAnalysisService::Step(std::stop_token stop) {
  Result<std::vector<DeepAnalysis>> unfinished = store_.ListUnfinishedDeepAnalyses();
  if (!unfinished.ok()) {
    Log()->error("cannot list deep analyses: {}", unfinished.status().ToString());
    return;
  }
  for (DeepAnalysis& analysis : *unfinished) {
    if (stop.stop_requested()) return;
    Result<SampleFile> sample = store_.GetSampleFile(analysis.sha256);
    if (sample.ok() && blobs_.Stat(analysis.sha256).ok()) {
      Detonate(std::move(analysis), *sample, stop);
      return;  // one detonation per pass: newer requests are looked at again first
    }
    if (analysis.collect_action_id.empty()) {
      Finish(analysis, ActionStatus::kFailed, "the sample is no longer stored on the server");
      continue;
    }
    Result<MachineAction> collect = store_.GetAction(analysis.collect_action_id);
    if (!collect.ok()) {
      Finish(analysis, ActionStatus::kFailed, "its CollectFile action is gone");
    } else if (IsFinal(collect->status)) {
      // Succeeded yet no sample: the device's result was refused (see RecordCollectedFile).
      std::string why = collect->status_message.empty() ? std::string(ActionStatusName(collect->status))
                                                        : collect->status_message;
      Finish(analysis, ActionStatus::kFailed, "collecting the sample failed: " + why);
    } else if (collect->progress_percent > 0) {
      std::string stage = analysis.stage.substr(0, analysis.stage.find(" (")) + " (" +
                          std::to_string(collect->progress_percent) + "%)";
      if (stage != analysis.stage) {
        analysis.stage = stage;
        analysis.updated = clock_.Now();
        (void)store_.PutDeepAnalysis(analysis);
      }
    }
  }
}

void DeepAnalysisService::Detonate(DeepAnalysis analysis, const SampleFile& sample,
                                   std::stop_token stop) {
  Result<std::string> blob = blobs_.PathOf(sample.sha256);
  if (!blob.ok()) return Finish(analysis, ActionStatus::kFailed, "the sample is not stored");
  analysis.status = ActionStatus::kInProgress;
  analysis.stage = "starting the sandbox";
  analysis.updated = clock_.Now();
  if (Status s = store_.PutDeepAnalysis(analysis); !s.ok()) {
    Log()->error("analysis {}: {}", analysis.id, s.ToString());
    return;
  }
  Log()->info("analysis {}: detonating {} ({})", analysis.id, sample.sha256, sample.file_name);
  const std::string report_path = options_.work_dir + "/" + analysis.id + ".json";
  std::error_code ignored;
  std::filesystem::remove(report_path, ignored);
  SandboxCommand command{
      .binary = options_.sandbox_binary,
      .args = {"--sample", *blob, "--file-name",
               sample.file_name.empty() ? sample.sha256 : sample.file_name, "--report",
               report_path, "--timeout-seconds", std::to_string(options_.sample_time_limit.count()),
               "--memory-mb", std::to_string(options_.sample_memory_mb)},
      .deadline = options_.sample_time_limit + std::chrono::seconds(120)};
  Result<SandboxExit> exit = RunSandboxCommand(
      command,
      [&](std::string_view line) {
        if (!line.starts_with(kStagePrefix)) return;
        analysis.stage = std::string(line.substr(kStagePrefix.size()));
        analysis.updated = clock_.Now();
        (void)store_.PutDeepAnalysis(analysis);
      },
      stop);
  if (stop.stop_requested()) {
    // Run again after the restart rather than record a failure the sample did not cause.
    analysis.status = ActionStatus::kPending;
    analysis.stage = "interrupted by a server stop; queued again";
    analysis.updated = clock_.Now();
    (void)store_.PutDeepAnalysis(analysis);
    std::filesystem::remove(report_path, ignored);
    return;
  }
  if (!exit.ok()) return Finish(analysis, ActionStatus::kFailed, exit.status().message());
  if (exit->exit_code != 0) {
    std::string why = exit->last_lines;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    if (size_t nl = why.rfind('\n'); nl != std::string::npos) why = why.substr(nl + 1);
    std::filesystem::remove(report_path, ignored);
    return Finish(analysis, ActionStatus::kFailed,
                  "the sandbox failed (" +
                      (exit->signal != 0 ? "signal " + std::to_string(exit->signal)
                                         : "exit " + std::to_string(exit->exit_code)) +
                      "): " + why);
  }
  Result<std::string> text = ReadFile(report_path);
  std::filesystem::remove(report_path, ignored);
  nlohmann::json report =
      text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  if (!report.is_object() || !report.contains("verdict") || !report["verdict"].is_string()) {
    return Finish(analysis, ActionStatus::kFailed, "the sandbox wrote no readable report");
  }
  analysis.verdict = report["verdict"].get<std::string>();
  analysis.report_json = report.dump();
  // Before the analysis shows as done, so whoever sees the result can see its alert too.
  RaiseAlertForBlockedObservables(analysis, sample, report);
  Finish(analysis, ActionStatus::kSucceeded, "");
}

void DeepAnalysisService::Finish(DeepAnalysis& analysis, ActionStatus status, std::string error) {
  analysis.status = status;
  analysis.error = std::move(error);
  analysis.stage = status == ActionStatus::kSucceeded ? "done" : "failed";
  analysis.updated = clock_.Now();
  if (Status s = store_.PutDeepAnalysis(analysis); !s.ok()) {
    Log()->error("analysis {}: cannot record its end: {}", analysis.id, s.ToString());
  }
  if (status == ActionStatus::kSucceeded) {
    Log()->info("analysis {}: {} is {}", analysis.id, analysis.sha256, analysis.verdict);
  } else {
    Log()->warn("analysis {}: failed: {}", analysis.id, analysis.error);
  }
  (void)store_.AppendAudit({.time = clock_.Now(),
                            .actor = "system",
                            .operation = "file.deepAnalysis.finished",
                            .target = analysis.sha256,
                            .details_json = nlohmann::json{{"analysisId", analysis.id},
                                                           {"status", ActionStatusName(status)},
                                                           {"verdict", analysis.verdict},
                                                           {"error", analysis.error}}
                                                .dump()});
}

void DeepAnalysisService::RaiseAlertForBlockedObservables(const DeepAnalysis& analysis,
                                                          const SampleFile& sample,
                                                          const nlohmann::json& report) {
  if (alerts_ == nullptr) return;
  Result<std::vector<Indicator>> indicators = store_.ListIndicators({});
  if (!indicators.ok()) {
    Log()->error("analysis {}: cannot read indicators: {}", analysis.id,
                 indicators.status().ToString());
    return;
  }
  std::vector<ObservableMatch> matches =
      MatchBlockedObservables(report, *indicators, clock_.Now());
  if (matches.empty()) return;
  Result<std::vector<FileCollection>> from = store_.ListFileCollections(sample.sha256);
  if (!from.ok() || from->empty()) return;  // an alert belongs to a device
  AlertSeverity severity = AlertSeverity::kMedium;
  std::string named;
  for (const ObservableMatch& m : matches) {
    severity = std::max(severity, m.indicator->severity);
    named += (named.empty() ? "" : ", ") + m.value;
  }
  quell::v1::Detection detection;
  detection.set_detection_id("deep-analysis:" + analysis.id);
  detection.set_detector_id("quell.deep-analysis");
  detection.set_title("Deep analysis: sample " + sample.file_name +
                      " reached blocked indicators");
  detection.set_description("Detonated in quell-sandbox (analysis " + analysis.id +
                            ", verdict " + analysis.verdict + "), the sample " + sample.sha256 +
                            " touched " + named + ", which Block indicators name.");
  detection.set_severity(std::string(AlertSeverityName(severity)));
  detection.set_category("Malware");
  detection.set_detection_source("DeepAnalysis");
  detection.set_threat_name("DeepAnalysis:" + analysis.verdict);
  detection.set_time_unix_ms(clock_.Now());
  detection.set_evidence_json(MatchEvidence(matches, sample).dump());
  detection.set_dedup_key("deep-analysis:" + sample.sha256);
  Result<AlertService::Ingested> ingested = alerts_->Ingest(from->front().machine_id, detection);
  if (!ingested.ok()) {
    Log()->error("analysis {}: alert not raised: {}", analysis.id, ingested.status().ToString());
  }
}

}  // namespace quell::server
