#include "agent/actions/run_antivirus_scan.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include "agent/restriction/restriction_controller.h"  // kFileIndicatorDetector
#include "common/files.h"
#include "common/logging.h"

namespace quell::agent {
namespace {

auto Log() {
  static auto log = Logger("scan");
  return log;
}

Result<std::string> RequestedType(const nlohmann::json& parameters) {
  if (!parameters.is_object()) return InvalidArgument("RunAntiVirusScan parameters must be an object");
  for (const auto& [key, value] : parameters.items()) {
    if ((key == "Comment" || key == "ScanType") && value.is_string()) continue;
    return InvalidArgument("RunAntiVirusScan: unexpected parameter '" + key + "'");
  }
  auto it = parameters.find("ScanType");
  if (it == parameters.end()) return std::string("Quick");
  std::string type = it->get<std::string>();
  if (type != "Quick" && type != "Full") {
    return InvalidArgument("RunAntiVirusScan: ScanType must be Quick or Full, not '" + type + "'");
  }
  return type;
}

std::string HumanBytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / (1ull << 30));
  } else if (b >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1ull << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(b) / 1024);
  }
  return buf;
}

std::string ProgressMessage(const scan::ScanProgress& p) {
  std::string msg = "scanned " + std::to_string(p.files_done) + "/" + std::to_string(p.files_total) +
                    " files, " + HumanBytes(p.bytes_done) + "/" + HumanBytes(p.bytes_total) + ", " +
                    std::to_string(p.detections) + " detection" + (p.detections == 1 ? "" : "s");
  if (p.remaining_ms >= 0) msg += ", ~" + std::to_string((p.remaining_ms + 999) / 1000) + "s left";
  return msg;
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Detection MakeScanDetection(const scan::ScanHit& hit, const std::string& action_id,
                            UnixMillis now) {
  const bool yara = hit.detector_id == "quell.av.yara";
  Detection d;
  d.detector_id = hit.detector_id;
  d.title = "'" + hit.threat_name + "' " + (yara ? "YARA rule matched" : "malware detected") +
            " in " + BaseName(hit.path);
  d.description = std::string(yara ? "YARA rule '" : "ClamAV signature '") + hit.threat_name +
                  "' matched " + hit.path +
                  (hit.member_path.empty() ? "" : " (archive member " + hit.member_path + ")") +
                  " during an antivirus scan.";
  d.severity = "High";
  d.category = "Malware";
  d.detection_source = "Antivirus";
  d.threat_name = hit.threat_name;
  d.time = now;
  nlohmann::json file = {
      {"@odata.type", "#microsoft.graph.security.fileEvidence"},
      {"detectionStatus", "detected"},
      {"verdict", "malicious"},
      {"remediationStatus", "none"},
      {"roles", nlohmann::json::array()},
      {"fileDetails",
       {{"fileName", BaseName(hit.path)},
        {"filePath", DirName(hit.path)},
        {"sha256", hit.sha256},
        {"fileSize", hit.size}}},
  };
  if (!hit.member_path.empty()) file["archiveMemberPath"] = hit.member_path;
  d.evidence = nlohmann::json::array({file});
  d.dedup_key = hit.detector_id + ":" + hit.threat_name + ":" + hit.sha256;
  d.action_id = action_id;
  return d;
}

Detection MakeScanIndicatorDetection(const scan::ScanHit& hit, const IndicatorMatch& m,
                                     const std::string& action_id, UnixMillis now) {
  const bool remediate = m.action == IndicatorAction::kBlockAndRemediate;
  const std::string name = m.title.empty() ? "indicator " + m.id : m.title;
  Detection d;
  d.detector_id = std::string(kFileIndicatorDetector);
  d.title = (remediate ? "File found by scan and remediated by indicator: "
                       : "File found by scan matches indicator: ") +
            BaseName(hit.path);
  d.description = "An antivirus scan found " + hit.path + ": its " +
                  std::string(IndicatorTypeName(m.type)) + " " + m.value +
                  " matches the custom indicator '" + name + "' (id " + m.id + ", action " +
                  std::string(IndicatorActionName(m.action)) + ")." +
                  (remediate ? " It is being stopped and quarantined." : "");
  d.severity = m.severity.empty() ? "Medium" : m.severity;
  d.category = "Malware";
  d.detection_source = "CustomTi";
  d.threat_name = name;
  d.time = now;
  d.evidence = nlohmann::json::array(
      {{{"@odata.type", "#microsoft.graph.security.fileEvidence"},
        {"detectionStatus", "detected"},
        {"verdict", "malicious"},
        {"remediationStatus", remediate ? "running" : "none"},
        {"roles", nlohmann::json::array()},
        {"fileDetails",
         {{"fileName", BaseName(hit.path)},
          {"filePath", DirName(hit.path)},
          {"sha256", hit.sha256},
          {"fileSize", hit.size}}}}});
  // The exec gate and the written-file watch use the same key: one alert per indicator and file.
  d.dedup_key = std::string(kFileIndicatorDetector) + ":" + m.id + ":" + hit.sha256;
  d.action_id = action_id;
  return d;
}

RunAntiVirusScanAction::RunAntiVirusScanAction(scan::ScanSettings settings,
                                               DetectionSink* detections, const Clock& clock,
                                               ScanIndicatorHooks indicators)
    : settings_(std::move(settings)),
      detections_(detections),
      clock_(clock),
      indicators_(std::move(indicators)) {}

const ActionSpec& RunAntiVirusScanAction::Spec() const {
  static const ActionSpec spec{
      .type = "RunAntiVirusScan",
      .undo_type = "",
      .description =
          "Scans the device with ClamAV signatures and YARA rules. Quick: running executables, "
          "persistence locations, temp directories and home directories; Full: every local "
          "filesystem. Each hit becomes an alert.",
      .risk = "low",
      .parameters_schema =
          {{"type", "object"},
           {"properties",
            {{"ScanType", {{"type", "string"}, {"enum", {"Quick", "Full"}}, {"default", "Quick"}}},
             {"Comment", {{"type", "string"}}}}},
           {"additionalProperties", false}},
  };
  return spec;
}

Status RunAntiVirusScanAction::Validate(const nlohmann::json& parameters) const {
  return RequestedType(parameters).status();
}

Result<std::shared_ptr<const scan::ScanEngines>> RunAntiVirusScanAction::CurrentEngines() {
  std::lock_guard lock(engines_mu_);
  const std::string version =
      scan::SignatureVersion(settings_.clamav_database_dirs, settings_.yara_rule_dirs);
  if (engines_ != nullptr && engines_->signature_version == version) return engines_;
  QUELL_ASSIGN_OR_RETURN(
      engines_, scan::ScanEngines::Load(settings_.clamav_database_dirs, settings_.yara_rule_dirs,
                                        scan::ClamLimits{
                                            .max_file_bytes = settings_.max_file_bytes,
                                            .archive_max_bytes = settings_.archive_max_bytes,
                                            .archive_max_recursion = settings_.archive_max_recursion,
                                        }));
  for (const std::string& w : engines_->warnings) Log()->warn("{}", w);
  Log()->info("signatures loaded: {} ClamAV, {} YARA rules (version {})",
              engines_->clam.signature_count(), engines_->yara.rule_count(),
              engines_->signature_version);
  return engines_;
}

Result<nlohmann::json> RunAntiVirusScanAction::Run(ActionContext& ctx) {
  QUELL_ASSIGN_OR_RETURN(const std::string type, RequestedType(ctx.parameters));
  std::unique_lock run_lock(run_mu_, std::try_to_lock);
  if (!run_lock.owns_lock()) return FailedPrecondition("another antivirus scan is running");

  ctx.report_progress(1, "loading signatures");
  QUELL_ASSIGN_OR_RETURN(std::shared_ptr<const scan::ScanEngines> engines, CurrentEngines());
  if (!cache_loaded_ && !settings_.cache_path.empty()) {
    cache_.LoadFrom(settings_.cache_path);
    cache_loaded_ = true;
  }

  ctx.report_progress(2, "listing files");
  std::vector<scan::ScanTarget> targets;
  if (type == "Quick") {
    targets = scan::QuickScanTargets({.root = settings_.quick_scan_root,
                                      .include_processes = settings_.quick_scan_processes});
  } else {
    std::vector<std::string> roots = settings_.full_scan_roots;
    if (roots.empty()) roots.push_back("/");
    for (const std::string& r : roots) targets.push_back({r, "", true});
  }
  std::set<dev_t> excluded;
  if (auto text = ReadFile(mountinfo_path_); text.ok()) {
    excluded = scan::ExcludedDevices(scan::ParseMountInfo(*text));
  } else {
    Log()->warn("cannot read {}: {}; no filesystem is excluded", mountinfo_path_,
                text.status().message());
  }
  scan::WalkStats walk;
  QUELL_ASSIGN_OR_RETURN(std::vector<scan::FileItem> files,
                         scan::EnumerateFiles(targets, excluded, ctx.stop, &walk));
  // Signature and rule files are not scanned: a YARA rule contains the strings it looks for.
  std::erase_if(files, [&](const scan::FileItem& f) {
    for (const auto& dirs : {settings_.clamav_database_dirs, settings_.yara_rule_dirs}) {
      for (const std::string& d : dirs) {
        if (f.open_path.starts_with(d + "/")) return true;
      }
    }
    return false;
  });
  Log()->info("action={} {} scan: {} files", ctx.action_id, type, files.size());

  const std::string action_id = ctx.action_id;
  // Indicator matches by path, so that on_hit (same thread, right after) knows which one.
  std::mutex matched_mu;
  std::map<std::string, IndicatorMatch> matched;
  scan::ScannerOptions scanner_options{.threads = settings_.threads,
                                       .cpu_limit_percent = settings_.cpu_limit_percent,
                                       .max_file_bytes = settings_.max_file_bytes};
  if (indicators_.match_file) {
    scanner_options.match_hashes = [&](const FileHashes& h, const std::string& path)
        -> std::optional<scan::ScanHit> {
      std::optional<IndicatorMatch> m = indicators_.match_file(
          {.path = path, .sha256 = h.sha256, .sha1 = h.sha1, .md5 = h.md5});
      if (!m || m->action == IndicatorAction::kAllowed) return std::nullopt;
      const std::string name = m->title.empty() ? "indicator " + m->id : m->title;
      {
        std::lock_guard lock(matched_mu);
        matched[path] = *m;
      }
      return scan::ScanHit{.detector_id = std::string(kFileIndicatorDetector),
                           .threat_name = name,
                           .path = path,
                           .sha256 = h.sha256};
    };
    if (indicators_.version) {
      scanner_options.cache_version_suffix = ":indicators-" + std::to_string(indicators_.version());
    }
  }
  auto on_hit = [&](const scan::ScanHit& hit) {
    Log()->warn("action={} {} '{}' in {}{}", action_id, hit.detector_id, hit.threat_name, hit.path,
                hit.member_path.empty() ? "" : " (" + hit.member_path + ")");
    if (hit.detector_id != kFileIndicatorDetector) {
      if (detections_ != nullptr) detections_->Report(MakeScanDetection(hit, action_id, clock_.Now()));
      return;
    }
    std::optional<IndicatorMatch> m;
    {
      std::lock_guard lock(matched_mu);
      if (auto it = matched.find(hit.path); it != matched.end()) m = it->second;
    }
    if (!m) return;
    if (m->generate_alert && detections_ != nullptr) {
      detections_->Report(MakeScanIndicatorDetection(hit, *m, action_id, clock_.Now()));
    }
    if (m->action == IndicatorAction::kBlockAndRemediate && indicators_.remediate) {
      indicators_.remediate(hit.sha256, hit.path, *m);
    }
  };
  auto on_progress = [&](const scan::ScanProgress& p) {
    const uint64_t pct = p.bytes_total == 0 ? 99 : 2 + (97 * p.bytes_done) / p.bytes_total;
    ctx.report_progress(static_cast<uint32_t>(std::min<uint64_t>(pct, 99)), ProgressMessage(p));
  };
  QUELL_ASSIGN_OR_RETURN(
      scan::ScanSummary summary,
      scan::RunScan(*engines, files, scanner_options, &cache_, on_hit, on_progress, ctx.stop));
  if (!settings_.cache_path.empty()) {
    if (Status s = cache_.SaveTo(settings_.cache_path); !s.ok()) {
      Log()->warn("cannot save the scan cache: {}", s.ToString());
    }
  }

  nlohmann::json detections = nlohmann::json::array();
  for (const scan::ScanHit& h : summary.hits) {
    nlohmann::json d = {{"detectorId", h.detector_id}, {"threatName", h.threat_name},
                        {"filePath", h.path},          {"sha256", h.sha256},
                        {"fileSize", h.size}};
    if (!h.member_path.empty()) d["archiveMemberPath"] = h.member_path;
    if (h.detector_id == kFileIndicatorDetector) {
      std::lock_guard lock(matched_mu);
      if (auto it = matched.find(h.path); it != matched.end()) {
        d["indicatorId"] = it->second.id;
        d["indicatorAction"] = IndicatorActionName(it->second.action);
      }
    }
    detections.push_back(std::move(d));
  }
  Log()->info("action={} {} scan done: {} files scanned, {} cached, {} detections in {} ms",
              action_id, type, summary.files_scanned, summary.files_cached, summary.hits.size(),
              summary.duration_ms);
  return nlohmann::json{
      {"scanType", type},
      {"signatureVersion", engines->signature_version},
      {"clamavSignatures", engines->clam.signature_count()},
      {"yaraRules", engines->yara.rule_count()},
      {"filesScanned", summary.files_scanned},
      {"filesSkippedUnchanged", summary.files_cached},
      {"filesSkippedTooLarge", summary.files_too_large},
      {"filesFailed", summary.files_failed + walk.unreadable},
      {"bytesScanned", summary.bytes_scanned},
      {"durationMs", summary.duration_ms},
      {"detectionCount", summary.hits.size()},
      {"detections", std::move(detections)},
      {"warnings", engines->warnings},
  };
}

}  // namespace quell::agent
