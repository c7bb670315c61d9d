// QuarantinedHashes: what the exec gate asks to keep a quarantined file from running again.
// A hash is in the set from the moment a stop-and-quarantine operation records its intent
// (so a respawn during the operation is already denied) until the file is restored.
//
// This header is the whole coupling between the quarantine and the exec gate
// (src/agent/restriction, src/agent/indicators): they hold a QuarantinedHashes& and call
// Contains with the SHA-256 they computed for the file being executed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace quell::agent::quarantine {

class QuarantinedHashes {
 public:
  virtual ~QuarantinedHashes() = default;
  // `sha256`: 64 hex digits, either case. Thread-safe; cheap (one hash-set lookup).
  virtual bool Contains(std::string_view sha256) const = 0;
  // Every hash in the set, lowercase hex, sorted. Thread-safe.
  virtual std::vector<std::string> Sha256s() const = 0;
};

}  // namespace quell::agent::quarantine
