// File indicator matching: which indicator applies to one file, from its hashes and, for a
// signed PE file, the certificates of its Authenticode signature.
//
// Precedence (documented choice; Defender documents "allow wins" among equal indicators and
// the longer hash among hash indicators, but not hash against certificate):
//   1. A hash indicator (SHA-256, then SHA-1, then MD5; among indicators with the same value
//      Allowed > Audit > BlockAndRemediate > Block) decides alone: a hash names exactly this
//      file, a certificate names everything its holder ever signed, so the hash is the more
//      specific statement. An Allowed hash runs a file signed by a blocked certificate; a
//      blocked hash stops a file signed by an allowed one.
//   2. Otherwise CertificateThumbprint indicators, strongest first:
//      Allowed   counts only when a signature is VALID (image digest and signed attributes)
//                and the allowed certificate is its signer or a verified issuer up the
//                embedded chain. A pinned thumbprint is the trust anchor; public roots play
//                no part. An invalid signature never makes anything Allowed.
//      others    (Block, BlockAndRemediate, Audit) match ANY embedded certificate, valid
//                signature or not: fail safe, a tampered file signed by a blocked
//                certificate stays blocked.
//      Allowed wins over Block when both apply (Defender's "allow wins").
//
// Thread-safety: FileIndicatorMatcher is thread-safe (its cache has a mutex); the exec gate's
// worker and the detection filter share one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "agent/indicators/authenticode.h"
#include "agent/indicators/indicator_set.h"

namespace quell::agent {

// The certificate indicator that applies to a file with this signature, by the rules above
// (step 2 only). `info` may describe an unsigned PE (no match then).
std::optional<IndicatorMatch> MatchSignatureIndicator(const IndicatorSet& set,
                                                      const AuthenticodeInfo& info);

// One file to match. Hashes are lowercase or uppercase hex; any may be empty.
struct FileToMatch {
  int fd = -1;            // open for reading (pread only); -1: `path` is opened when needed
  std::string_view path;  // used only when fd is -1
  std::string_view sha256, sha1, md5;
};

struct FileIndicatorMatcherOptions {
  AuthenticodeLimits limits;
  // Signatures are cached by content SHA-256 (a pure function of the bytes); the cache is
  // cleared when it grows past this.
  size_t max_cache_entries = 4096;
};

class FileIndicatorMatcher {
 public:
  // Runs its argument with the indicator set under whatever lock guards it (for the agent:
  // IndicatorStore::Read). Called at most twice per Match, never while reading the file.
  using ReadSet = std::function<void(const std::function<void(const IndicatorSet&)>&)>;

  explicit FileIndicatorMatcher(ReadSet read, FileIndicatorMatcherOptions options = {});

  // The indicator that applies to the file, or nullopt. The signature is read only when a
  // CertificateThumbprint indicator exists, no hash indicator matched and the file starts with
  // "MZ"; a file that cannot be read or parsed has no certificate match (its hash indicators
  // still applied). With fd = -1 the file at `path` counts only when its SHA-256 equals
  // `sha256` (a file replaced after the detection is not vouched for by its successor).
  std::optional<IndicatorMatch> Match(const FileToMatch& file);

  struct Stats {
    uint64_t signatures_read = 0, cache_hits = 0, read_errors = 0;
  };
  Stats GetStats() const;

 private:
  // nullptr: not a signed PE, or unreadable.
  std::shared_ptr<const AuthenticodeInfo> Signature(const FileToMatch& file);

  ReadSet read_;
  FileIndicatorMatcherOptions options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const AuthenticodeInfo>> cache_;  // by sha256
  Stats stats_;
};

}  // namespace quell::agent
