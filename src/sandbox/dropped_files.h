// The files a sample left behind in the sandbox's writable places, read by the supervisor on
// the host after the run. The walk never follows a symlink and opens nothing but regular
// files (a sample controls these trees and may plant links or FIFOs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/observations.h"

namespace quell::sandbox {

// A writable tree: where it is on the host and where the sample saw it.
struct WritableDir {
  std::string host_path;
  std::string sandbox_path;  // absolute, e.g. "/tmp"
};

struct DroppedFileLimits {
  size_t max_files = 1000;                // the rest are not listed
  uint64_t max_hash_bytes = 64ull << 20;  // larger files are listed with an empty sha256
  int max_depth = 32;
};

// Every regular file under `dirs`, sorted by path, except `skip_path` (a sandbox path) when
// its SHA-256 is `skip_sha256` (the sample's own, unmodified copy).
Result<std::vector<DroppedFile>> CollectDroppedFiles(const std::vector<WritableDir>& dirs,
                                                     const std::string& skip_path = {},
                                                     const std::string& skip_sha256 = {},
                                                     const DroppedFileLimits& limits = {});

}  // namespace quell::sandbox
