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
#include "agent/actions/artifact_sender.h"
#include "agent/collect/collectors.h"
#include "agent/collect/package_staging.h"
#include "common/clock.h"

namespace quell::agent {

// The artifact name the package is uploaded as.
inline constexpr char kInvestigationPackageArtifact[] = "investigation-package.zip";

struct CollectPackageOptions {
  std::string work_dir;  // where packages are staged; e.g. <state_dir>/collect
  std::string computer_name;  // empty: the host name
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
