// QuarantineVault: where quarantined files are kept, encrypted at rest, with everything needed
// to put them back exactly (path, owner, mode, times, xattrs) and their digests.
//
// Layout of the vault directory (0700):
//   vault.key        32 random bytes (AES-256 key), 0600, created on first use; one per agent
//   <id>.qv          "QUELLQV1" | 12-byte IV | AES-256-GCM ciphertext | 16-byte tag; the item
//                    id is the additional authenticated data, so blobs cannot be swapped
//   <id>.json        metadata, written (atomically) after <id>.qv is complete and fsynced:
//                    an item exists exactly when its .json does
// Files are streamed in 64 KiB chunks both ways: memory use does not depend on file size.
// Restore writes to a temp file beside the destination and renames it into place only after
// the GCM tag verified, so a tampered blob or a wrong key never leaves partial content.
//
// Thread-safety: distinct ids may be used concurrently; one id from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/quarantine/file_state.h"
#include "common/hash.h"
#include "common/status.h"

namespace quell::agent::quarantine {

struct VaultItem {
  std::string id;
  std::string path;  // where the file was (as opened: the configured root included)
  uint32_t uid = 0, gid = 0, mode = 0;
  int64_t atime_ns = 0, mtime_ns = 0;
  uint64_t size = 0;
  std::string sha256, sha1, md5;  // lowercase hex, of the plaintext
  Xattrs xattrs;
  std::optional<DirTimes> parent;  // the directory's times before the file was removed
  // Identity of the original when stored: the caller checks it is unchanged before unlinking.
  uint64_t dev = 0, ino = 0;
  int64_t ctime_ns = 0;
  std::string key_id;  // which vault key encrypted it (not the key)
};

class QuarantineVault {
 public:
  // Opens the vault in `dir` (created 0700), creating the key on first use. An existing key
  // file of the wrong size is an error, never silently replaced.
  static Result<std::unique_ptr<QuarantineVault>> Open(const std::string& dir);

  // Copies the regular file at `path` (never following a symlink) into the vault as `id`,
  // encrypted and fsynced, computing its digests. The original is left in place. Idempotent:
  // an existing item `id` is returned as it is. FailedPrecondition if the file changed while
  // it was read.
  Result<VaultItem> Store(const std::string& path, const std::string& id);

  Result<VaultItem> Find(const std::string& id) const;  // NotFound if absent
  std::vector<VaultItem> List() const;

  // Writes item `id` back to its original path with owner, mode, xattrs, atime/mtime and the
  // directory's times. Ok if an identical file (same SHA-256) is already there; AlreadyExists
  // if a different file is: it is never overwritten. FailedPrecondition (with the reason) when
  // the blob fails authentication: tampered, truncated, or encrypted with another key.
  Status Restore(const std::string& id);

  // Forgets item `id` (missing is fine).
  Status Delete(const std::string& id);

  const std::string& key_id() const { return key_id_; }

 private:
  QuarantineVault(std::string dir, std::string key, std::string key_id)
      : dir_(std::move(dir)), key_(std::move(key)), key_id_(std::move(key_id)) {}
  std::string BlobPath(const std::string& id) const { return dir_ + "/" + id + ".qv"; }
  std::string MetaPath(const std::string& id) const { return dir_ + "/" + id + ".json"; }

  const std::string dir_;
  const std::string key_;  // 32 bytes; never logged
  const std::string key_id_;
};

using quell::FileHashes;
// Digests of the file at `path` (streamed; following symlinks, so /proc/<pid>/exe works).
Result<FileHashes> HashFile(const std::string& path);

// True for ids that can name a vault file: [A-Za-z0-9_-]{1,128}.
bool IsSafeId(const std::string& id);

}  // namespace quell::agent::quarantine
