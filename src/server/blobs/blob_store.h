// BlobStore: the server's store for large artifacts from devices (investigation packages,
// files fetched by live response or collection, command output).
//
// Content-addressed: a finished blob lives at <dir>/sha256/<2 hex>/<64 hex> and is never
// rewritten, so identical content is stored once and a name always means the same bytes.
//
// Uploads arrive in pieces and survive a dropped connection or a server restart: each one
// appends to <dir>/partial/<upload id>, and the length of that file is where the sender
// resumes (UploadedBytes). Finish() hashes what arrived, checks it against the SHA-256 the
// sender announced, makes it durable (fsync) and renames it into place; a mismatch discards
// the partial, so a torn tail left by a crash can never become a blob. Nothing is ever held in
// memory beyond the piece being written.
//
// Thread-safety: all methods may be called from any thread; calls for one upload id are
// serialized, different uploads proceed in parallel.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"

namespace quell::server {

struct BlobInfo {
  std::string sha256;  // lowercase hex: the blob's name
  uint64_t size = 0;
};

struct BlobStoreOptions {
  uint64_t max_blob_bytes = 4ULL << 30;  // one upload may not grow beyond this
};

class BlobStore {
 public:
  // Creates the directories (mode 0700) when missing.
  static Result<std::unique_ptr<BlobStore>> Open(std::string dir, BlobStoreOptions options = {});

  // Upload ids are 1-128 characters of [A-Za-z0-9._-], not starting with '.'; they name a
  // file, so anything else is refused with InvalidArgument. Choose them so a retry of the
  // same transfer reuses its id (e.g. "<action id>.<artifact index>").

  // How many bytes of the upload are stored: where the sender continues. 0 for a new upload.
  Result<uint64_t> UploadedBytes(std::string_view upload_id) const;
  // Stores `bytes` at `offset`, which must equal UploadedBytes(); otherwise FailedPrecondition
  // whose message names the offset to resume from. ResourceExhausted beyond max_blob_bytes.
  Status Append(std::string_view upload_id, uint64_t offset, std::string_view bytes);
  // Seals the upload as a blob when its SHA-256 is `expected_sha256`. On a mismatch the
  // partial is discarded (the sender starts again from 0) and InvalidArgument names both
  // digests. NotFound when nothing was uploaded under that id.
  Result<BlobInfo> Finish(std::string_view upload_id, std::string_view expected_sha256);
  // Drops an unfinished upload (no error when there is none).
  Status Abort(std::string_view upload_id);

  // Stores small content in one step (e.g. a library file posted through the API).
  Result<BlobInfo> Put(std::string_view bytes);

  // The file holding a finished blob, for streaming it out. NotFound for an unknown or
  // malformed name.
  Result<std::string> PathOf(std::string_view sha256) const;
  Result<BlobInfo> Stat(std::string_view sha256) const;
  // Removes a blob (retention). No error when it is already gone.
  Status Remove(std::string_view sha256);

  // Removes partial uploads not written to since `before` (senders that gave up). Returns
  // how many were removed.
  size_t ReapPartials(UnixMillis before);

  const std::string& dir() const { return dir_; }

 private:
  BlobStore(std::string dir, BlobStoreOptions options);
  std::string PartialPath(std::string_view upload_id) const;
  std::string BlobPath(std::string_view sha256) const;
  std::mutex& LockFor(std::string_view upload_id) const;
  Result<BlobInfo> Seal(const std::string& source, std::string_view expected_sha256);

  const std::string dir_;
  const BlobStoreOptions options_;
  mutable std::array<std::mutex, 16> upload_locks_;  // striped by upload id
};

}  // namespace quell::server
