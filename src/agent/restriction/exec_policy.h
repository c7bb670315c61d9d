// ExecPolicy: decides whether a file may be executed, and caches the decision.
//
// Allowed: (1) the agent's own binary; (2) a file whose SHA-256 is on the allow-list;
// (3) a file a Debian package installed whose content still matches the MD5 dpkg recorded.
// Everything else is "not approved". The verdict cache is keyed by (device, inode, size,
// mtime, ctime): any write or metadata change to the file changes ctime, so a changed file is
// re-evaluated; steady-state cost per exec is one fstat and one hash-table lookup.
//
// Not thread-safe: owned by the one thread answering permission events.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/restriction/package_index.h"
#include "common/status.h"

namespace quell::agent {

struct FileKey {
  uint64_t dev = 0, ino = 0;
  int64_t size = 0, mtime_ns = 0, ctime_ns = 0;
  bool operator==(const FileKey&) const = default;
};
struct FileKeyHash {
  size_t operator()(const FileKey& k) const;
};

// SHA-256, SHA-1 and MD5 of everything readable through `fd` (pread, offset untouched), in
// one pass (SHA-1 for file indicators).
struct FileDigests {
  std::string sha256, sha1, md5;  // lowercase hex
};
Result<FileDigests> DigestFd(int fd);

Result<FileKey> KeyOfFd(int fd);

struct ExecVerdict {
  bool approved = false;
  std::string reason;   // "agent" | "allow-list" | "package:<name>" | "not from a package" |
                        // "modified package file" | "too large to verify"
  std::string path;     // as the kernel names the open file
  std::string sha256;   // empty when not computed (agent binary by key)
  std::string sha1, md5;  // computed with sha256 (file indicators match on any of them)
  std::string package;  // owning package, also when modified
  int64_t size = 0;
  bool cached = false;  // answered from the cache
};

struct ExecPolicyOptions {
  std::vector<std::string> allow_sha256;  // lowercase or uppercase hex; normalised
  std::optional<FileKey> self_key;        // the agent's own binary
  std::string self_sha256;
  int64_t max_file_bytes = 512LL << 20;   // larger files are not hashed: not approved
  size_t max_cache_entries = 65536;       // the cache is cleared when it grows past this
};

class ExecPolicy {
 public:
  ExecPolicy(PackageIndex packages, ExecPolicyOptions options);

  // Evaluates the open file `fd`. Errors (fstat/read failures) are returned, never turned
  // into a verdict: the caller decides (the controller allows: fail-open).
  Result<ExecVerdict> Evaluate(int fd);

  // Drops every cached verdict, e.g. when the package database changed.
  void ClearCache() { cache_.clear(); }
  void ReplacePackages(PackageIndex packages);

  struct Counters {
    uint64_t evaluations = 0, cache_hits = 0, hashed = 0;
  };
  const Counters& counters() const { return counters_; }
  size_t package_files() const { return packages_.size(); }
  size_t allow_list_size() const { return allow_.size(); }

 private:
  ExecVerdict Decide(int fd, const FileKey& key, Status& error);

  PackageIndex packages_;
  ExecPolicyOptions options_;
  std::unordered_set<std::string> allow_;
  std::unordered_map<FileKey, ExecVerdict, FileKeyHash> cache_;
  Counters counters_;
};

// Lowercase hex of a SHA-256 if `text` is one (64 hex digits), else nullopt.
std::optional<std::string> NormaliseSha256(std::string_view text);

}  // namespace quell::agent
