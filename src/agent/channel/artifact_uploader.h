// ArtifactUploader: sends one file to the server as an artifact of an action
// (proto/quell/v1/transfer.proto), resuming after any break.
//
// It hashes the file first (the server checks the SHA-256 when the upload is sealed), asks
// the server where it stands (UploadStatus), streams the rest in chunks read with pread —
// never more than one chunk in memory — and after a transport failure waits (Backoff, full
// jitter) and asks again, on a fresh channel. An upload the server already holds whole (its
// reply was lost) is not sent again. Errors that retrying cannot fix (not the device's action,
// the action ended, too large, a bad name) end it at once; so do `stop` and `give_up_after`.
// The file must not change while it is uploaded (the digest check would refuse it).
//
// Thread-safety: one Upload per object at a time; several objects may upload in parallel.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "agent/channel/backoff.h"
#include "common/status.h"

namespace quell::agent {

struct UploadedArtifact {
  std::string sha256;
  uint64_t size = 0;
};

struct ArtifactUploaderOptions {
  size_t chunk_bytes = 1 << 20;  // the server accepts at most 1 MiB per chunk
  std::chrono::milliseconds retry_initial{500};
  std::chrono::milliseconds retry_max{30'000};
  std::chrono::milliseconds give_up_after{30 * 60 * 1000};
  Backoff::Random random;  // empty: Backoff::SystemRandom()
};

class ArtifactUploader {
 public:
  // Gives a channel to the server that presents the device certificate; called again for
  // a fresh channel after a failure.
  using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>()>;
  // Bytes the server holds, and the total, after each chunk it accepted.
  using Progress = std::function<void(uint64_t stored, uint64_t total)>;

  explicit ArtifactUploader(ChannelFactory channels, ArtifactUploaderOptions options = {});

  // Uploads the file at `path` as artifact `name` of action `action_id`.
  Result<UploadedArtifact> Upload(const std::string& action_id, const std::string& name,
                                  const std::string& path, std::stop_token stop,
                                  const Progress& progress = {});

 private:
  ChannelFactory channels_;
  ArtifactUploaderOptions options_;
};

}  // namespace quell::agent
