#include "agent/actions/collect_investigation_package.h"

#include <unistd.h>

#include <filesystem>

#include "agent/collect/package_summary.h"
#include "common/logging.h"
#include "common/zip_writer.h"

namespace quell::agent {
namespace {

namespace fs = std::filesystem;

auto Log() {
  static auto log = Logger("collect");
  return log;
}

// Removes the staging directory and the zip when a run ends, however it ends.
class WorkFilesGuard {
 public:
  explicit WorkFilesGuard(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  ~WorkFilesGuard() {
    for (const std::string& p : paths_) {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  }
  WorkFilesGuard(const WorkFilesGuard&) = delete;
  WorkFilesGuard& operator=(const WorkFilesGuard&) = delete;

 private:
  std::vector<std::string> paths_;
};

// The configured name, else the host name (read when a package is made, not at agent start).
std::string ComputerName(const std::string& configured) {
  if (!configured.empty()) return configured;
  char host[256] = {};
  return ::gethostname(host, sizeof host - 1) == 0 ? host : "";
}

}  // namespace

CollectInvestigationPackageAction::CollectInvestigationPackageAction(
    CollectPackageOptions options, ArtifactSender send, const Clock& clock,
    std::vector<collect::Collector> collectors)
    : options_(std::move(options)),
      send_(std::move(send)),
      clock_(clock),
      collectors_(std::move(collectors)) {}

const ActionSpec& CollectInvestigationPackageAction::Spec() const {
  static const ActionSpec spec{
      .type = "CollectInvestigationPackage",
      .undo_type = "",
      .description =
          "Collects the device's state into a zip with one folder per topic (autoruns, "
          "installed programs, network connections, processes, scheduled tasks, security logs, "
          "services, users and groups, logins, system information, temp directories) and a "
          "summary report, and uploads it to the server. Never collects password hashes or "
          "private keys.",
      .risk = "low",
      .parameters_schema = {{"type", "object"},
                            {"properties", {{"Comment", {{"type", "string"}}}}},
                            {"additionalProperties", false}},
  };
  return spec;
}

Status CollectInvestigationPackageAction::Validate(const nlohmann::json& parameters) const {
  if (!parameters.is_object()) {
    return InvalidArgument("CollectInvestigationPackage parameters must be an object");
  }
  for (const auto& [key, value] : parameters.items()) {
    if (key == "Comment" && value.is_string()) continue;
    return InvalidArgument("CollectInvestigationPackage: unexpected parameter '" + key + "'");
  }
  return Status::Ok();
}

Result<nlohmann::json> CollectInvestigationPackageAction::Run(ActionContext& ctx) {
  QUELL_RETURN_IF_ERROR(Validate(ctx.parameters));
  std::unique_lock run_lock(run_mu_, std::try_to_lock);
  if (!run_lock.owns_lock()) {
    return FailedPrecondition("another investigation package is being collected");
  }
  const UnixMillis started = clock_.Now();
  const std::string staging_dir = options_.work_dir + "/" + ctx.action_id;
  const std::string zip_path = staging_dir + ".zip";
  WorkFilesGuard cleanup({staging_dir, zip_path});

  QUELL_ASSIGN_OR_RETURN(std::unique_ptr<collect::PackageStaging> staging,
                         collect::PackageStaging::Create(staging_dir, options_.limits, ctx.stop,
                                                         clock_));
  // Progress: collecting 0-60 %, zipping 60-70 %, uploading 70-99 %.
  collect::PackageInfo info{.action_id = ctx.action_id,
                            .computer_name = ComputerName(options_.computer_name),
                            .started = started};
  for (size_t i = 0; i < collectors_.size(); ++i) {
    const collect::Collector& c = collectors_[i];
    info.topics.push_back(c.topic);
    if (staging->Exhausted()) {
      staging->RecordFailure(c.topic, c.topic,
                             "not collected: the package stopped at the " +
                                 staging->ExhaustedReason());
      continue;
    }
    ctx.report_progress(static_cast<uint32_t>(60 * i / collectors_.size()),
                        "collecting " + c.topic);
    const size_t failures_before = staging->failures().size();
    c.collect(options_.sources, *staging);
    Log()->debug("action={} {}: {} not collected", ctx.action_id, c.topic,
                 staging->failures().size() - failures_before);
  }
  if (ctx.stop.stop_requested()) return Cancelled("investigation package collection cancelled");
  info.finished = clock_.Now();
  const nlohmann::json summary = collect::SummaryJson(info, *staging);
  QUELL_RETURN_IF_ERROR(collect::WriteSummary(summary, *staging).WithContext("summary report"));

  ctx.report_progress(60, "compressing " + std::to_string(staging->total_bytes() >> 10) + " KiB");
  {
    QUELL_ASSIGN_OR_RETURN(ZipWriter zip, ZipWriter::Create(zip_path));
    QUELL_RETURN_IF_ERROR(zip.AddTree(staging_dir));
    QUELL_RETURN_IF_ERROR(zip.Close([&](double done) {
      ctx.report_progress(60 + static_cast<uint32_t>(10 * done), "compressing");
    }));
  }
  const uint64_t zip_bytes = fs::file_size(zip_path);
  ctx.report_progress(70, "uploading " + std::to_string(zip_bytes >> 10) + " KiB");
  QUELL_ASSIGN_OR_RETURN(
      SentArtifact sent,
      send_(ctx.action_id, kInvestigationPackageArtifact, zip_path, ctx.stop,
            [&](uint64_t stored, uint64_t total) {
              const uint64_t pct = total == 0 ? 99 : 70 + 29 * stored / total;
              ctx.report_progress(static_cast<uint32_t>(pct),
                                  "uploaded " + std::to_string(stored >> 10) + " of " +
                                      std::to_string(total >> 10) + " KiB");
            }));

  nlohmann::json topics = nlohmann::json::array();
  for (const auto& t : summary["topics"]) {
    topics.push_back({{"name", t["name"]},
                      {"artifacts", t["artifacts"].size()},
                      {"failures", t["failures"].size()}});
  }
  Log()->info("action={} investigation package: {} artifacts, {} not collected, {} bytes zipped, "
              "sha256 {}",
              ctx.action_id, staging->artifacts().size(), staging->failures().size(), sent.size,
              sent.sha256);
  return nlohmann::json{
      {"artifactName", kInvestigationPackageArtifact},
      {"sha256", sent.sha256},
      {"size", sent.size},
      {"complete", summary["complete"]},
      {"incompleteReason", summary["incompleteReason"]},
      {"artifactCount", summary["artifactCount"]},
      {"truncatedCount", summary["truncatedCount"]},
      {"failureCount", summary["failureCount"]},
      {"collectedBytes", summary["totalBytes"]},
      {"durationMs", clock_.Now() - started},
      {"topics", std::move(topics)},
  };
}

}  // namespace quell::agent
