// CollectInvestigationPackage: captures the state of the device as a zip with one folder per
// topic (collect/collectors.h) and a summary report, and sends it to the server, where it is
// kept as a content-addressed blob and handed out by getPackageUri.
//
// The package is staged on disk under <work_dir>/<action id>/ within the limits of
// CollectLimits, zipped to <work_dir>/<action id>.zip (streamed, never in memory) and uploaded
// with resume; both are removed afterwards, whatever the outcome. One collection at a time.
#pragma once

#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "agent/actions/action.h"
#include "agent/collect/collectors.h"
#include "agent/collect/package_staging.h"
#include "common/clock.h"

namespace quell::agent {

// The artifact name the package is uploaded as.
inline constexpr char kInvestigationPackageArtifact[] = "investigation-package.zip";

struct SentArtifact {
  std::string sha256;
  uint64_t size = 0;
};

// Sends a finished file to the server as an artifact of an action (the agent binds
// ArtifactUploader::Upload here). `progress` gets the bytes the server holds and the total.
using ArtifactSender = std::function<Result<SentArtifact>(
    const std::string& action_id, const std::string& artifact_name, const std::string& path,
    std::stop_token stop, const std::function<void(uint64_t stored, uint64_t total)>& progress)>;

struct CollectPackageOptions {
  std::string work_dir;  // where packages are staged; e.g. <state_dir>/collect
  std::string computer_name;
  collect::CollectLimits limits;
  collect::CollectSources sources;
};

class CollectInvestigationPackageAction final : public Action {
 public:
  CollectInvestigationPackageAction(CollectPackageOptions options, ArtifactSender send,
                                    const Clock& clock = SystemClock::Instance(),
                                    std::vector<collect::Collector> collectors =
                                        collect::InvestigationCollectors());

  const ActionSpec& Spec() const override;
  // Parameters: none ("Comment" tolerated).
  Status Validate(const nlohmann::json& parameters) const override;
  // Succeeds with {"artifactName", "sha256", "size", "complete", "incompleteReason",
  // "artifactCount", "failureCount", "topics": [{"name", "artifacts", "failures"}], ...} once
  // the server holds the package; Failed when it could not be written or sent; Cancelled on
  // ctx.stop.
  Result<nlohmann::json> Run(ActionContext& ctx) override;

 private:
  const CollectPackageOptions options_;
  const ArtifactSender send_;
  const Clock& clock_;
  const std::vector<collect::Collector> collectors_;
  std::mutex run_mu_;  // one collection at a time
};

}  // namespace quell::agent
