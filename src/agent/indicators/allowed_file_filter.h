// AllowedFileFilter: a DetectionSink in front of the agent's sink that drops detections about
// a file an Allowed indicator covers (antivirus, YARA and rule detections; the Defender
// meaning of "Allowed"). A detection is about a file when one of its fileEvidence entries
// (filePath and sha256/sha1/md5) resolves to an Allowed indicator: a hash indicator, or for a
// PE file validly signed by an allowed certificate a CertificateThumbprint indicator (the
// agent passes FileIndicatorMatcher::Match). Detections of the indicators themselves pass.
// Thread-safe if `match` is.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "agent/detect/detection.h"
#include "agent/indicators/file_indicator_match.h"
#include "agent/indicators/indicator_set.h"

namespace quell::agent {

class AllowedFileFilter final : public DetectionSink {
 public:
  // Gets the evidence's path and hashes (fd = -1).
  using Match = std::function<std::optional<IndicatorMatch>(const FileToMatch& file)>;
  // `next` must outlive this.
  AllowedFileFilter(DetectionSink& next, Match match) : next_(next), match_(std::move(match)) {}

  void Report(Detection detection) override;
  uint64_t suppressed() const { return suppressed_; }

 private:
  DetectionSink& next_;
  Match match_;
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace quell::agent
