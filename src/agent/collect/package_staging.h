// PackageStaging: an investigation package while it is being collected — a directory with one
// subdirectory per topic — plus the record of what was collected and what failed, and why.
//
// Everything added passes the secret screen (secret_screen.h): a line or JSON value holding a
// private key or a password hash is replaced by a marker, and the artifact records how many.
//
// Collectors add artifacts through it and never fail as a whole: a file that cannot be read or
// a command that is missing becomes a CollectFailure in the summary, and collection goes on.
// It enforces the limits: each artifact is cut at max_artifact_bytes (and marked truncated),
// nothing more is written once max_total_bytes is reached or the time limit has passed, and
// commands are killed at their timeout. Nothing is held in memory beyond one artifact's text.
//
// Names inside the package are "<topic>/<name>", where name may contain '/' but no empty,
// "." or ".." component (a name from a host path cannot escape the staging directory).
//
// Thread-safety: one collector at a time (not thread-safe).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace quell::agent::collect {

struct CollectLimits {
  uint64_t max_artifact_bytes = 32ull << 20;
  uint64_t max_total_bytes = 256ull << 20;
  std::chrono::milliseconds time_limit{10 * 60 * 1000};
  std::chrono::milliseconds command_timeout{60 * 1000};
};

struct StagedArtifact {
  std::string topic;
  std::string name;    // within the topic
  std::string source;  // the host path or command line it came from
  uint64_t bytes = 0;
  bool truncated = false;  // cut at the per-artifact or total cap
  uint32_t secrets_removed = 0;  // lines or values removed by the secret screen
};

struct CollectFailure {
  std::string topic;
  std::string what;    // the path, command or item that could not be collected
  std::string reason;  // why, in words an operator can act on
};

class PackageStaging {
 public:
  // Creates `dir` (removing what a previous, interrupted run left there). The time limit
  // counts from now.
  static Result<std::unique_ptr<PackageStaging>> Create(std::string dir, CollectLimits limits,
                                                        std::stop_token stop,
                                                        const Clock& clock = SystemClock::Instance());
  ~PackageStaging();

  // Each Add returns whether the artifact was written (possibly truncated); on false, a
  // failure has been recorded, unless the package is Exhausted().
  bool AddText(std::string_view topic, std::string_view name, std::string_view text,
               std::string_view source = "");
  bool AddJson(std::string_view topic, std::string_view name, const nlohmann::json& value,
               std::string_view source = "");
  // Copies a regular file (symlinks are not followed; fifos, devices and directories are
  // refused) as it is now. Password-hash databases (/etc/shadow, ...) are refused by name.
  bool AddFileCopy(std::string_view topic, std::string_view name, const std::string& path);
  // Runs argv (argv[0] found in PATH; no shell; stdin /dev/null; LC_ALL=C) and keeps its
  // standard output. A missing program, a non-zero exit or a timeout is a failure (the output
  // produced so far is still kept, marked truncated on timeout).
  bool AddCommandOutput(std::string_view topic, std::string_view name,
                        const std::vector<std::string>& argv);
  void RecordFailure(std::string_view topic, std::string_view what, std::string_view reason);

  // True once the total cap or the time limit is reached or a stop is requested: collectors
  // should return early. The summary says which.
  bool Exhausted() const;
  // Why the package is incomplete ("" when it is not): "size limit", "time limit", "cancelled".
  std::string ExhaustedReason() const;
  std::chrono::milliseconds Remaining() const;

  const std::string& dir() const { return dir_; }
  uint64_t total_bytes() const { return total_bytes_; }
  const std::vector<StagedArtifact>& artifacts() const { return artifacts_; }
  const std::vector<CollectFailure>& failures() const { return failures_; }
  const CollectLimits& limits() const { return limits_; }

 private:
  PackageStaging(std::string dir, CollectLimits limits, std::stop_token stop, const Clock& clock);
  // The file for <topic>/<name>, with its parent directories; InvalidArgument for bad names.
  Result<std::string> PrepareTarget(std::string_view topic, std::string_view name);
  // AddText, for text already partly screened (`removed_before` secrets, by AddJson).
  bool AddScreenedText(std::string_view topic, std::string_view name, std::string_view text,
                       std::string_view source, uint32_t removed_before);
  uint64_t ArtifactBudget() const;  // min(per-artifact cap, what the total cap leaves)
  struct Copied {
    uint64_t bytes = 0;
    bool truncated = false;
    uint32_t secrets_removed = 0;
  };
  // Streams everything readable from `in` through the secret screen into `out`, up to
  // `budget` bytes of output.
  static Result<Copied> CopyScreened(int in, int out, uint64_t budget);
  void Record(StagedArtifact artifact);

  std::string dir_;
  CollectLimits limits_;
  std::stop_token stop_;
  const Clock& clock_;
  UnixMillis deadline_ = 0;
  uint64_t total_bytes_ = 0;
  bool hit_total_cap_ = false;
  std::vector<StagedArtifact> artifacts_;
  std::vector<CollectFailure> failures_;
};

}  // namespace quell::agent::collect
