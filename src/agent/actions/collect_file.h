// CollectFile: sends one file from the device to the server, where it becomes a sample the
// analyst can download as a password-protected zip or send to deep analysis.
//
// The file is opened once, through the same refusals as live response's getfile (devices,
// fifos, sockets, /proc, /sys, /dev, symlink loops, too large), hashed (SHA-256, SHA-1, MD5
// in one pass) and streamed through that descriptor by the resumable artifact upload, whose
// digest the server checks. A file that is written to while this happens is not collected:
// the upload's digest no longer matches the one taken first, or its size or change time
// moved, and the action fails saying so — a half-old, half-new file is never reported as the
// file.
#pragma once

#include <cstdint>

#include "agent/actions/action.h"
#include "agent/actions/artifact_sender.h"

namespace quell::agent {

// The artifact name the file is uploaded as.
inline constexpr char kCollectedFileArtifact[] = "file";

struct CollectFileOptions {
  uint64_t max_bytes = 3ULL << 30;  // Defender's getfile limit, 3 GB
};

class CollectFileAction final : public Action {
 public:
  CollectFileAction(CollectFileOptions options, ArtifactSender send);

  const ActionSpec& Spec() const override;
  // Parameters: "Path" (absolute, required: the server fills it in for a request by hash),
  // optional "Sha256" the file must have; "Comment" tolerated.
  Status Validate(const nlohmann::json& parameters) const override;
  // Succeeds with {"Path", "FileName", "Size", "Sha256", "Sha1", "Md5", "Artifact"} once the
  // server holds the file. FailedPrecondition when the file is not the Sha256 asked for or
  // changed while it was sent; the refusals of CheckReadableFile as they are.
  Result<nlohmann::json> Run(ActionContext& ctx) override;

 private:
  const CollectFileOptions options_;
  const ArtifactSender send_;
};

}  // namespace quell::agent
