// LibraryDownloader: fetches a live response library file from the server
// (ArtifactTransfer.FetchLibraryFile) into a path, resuming after any break.
//
// The file is written to "<dest>.<digest prefix>.part"; after a transport failure it waits (Backoff, full
// jitter) and continues from the part's length on a fresh channel. It is renamed to `dest`
// only when its SHA-256 is the one the action named, so a half-fetched or altered file never
// appears under the final name. Errors retrying cannot fix (not the device's action, the file
// is not one it names, a digest mismatch) end it at once; so do `stop` and `give_up_after`.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "agent/channel/backoff.h"
#include "common/status.h"

namespace quell::agent {

struct LibraryDownloaderOptions {
  std::chrono::milliseconds retry_initial{500};
  std::chrono::milliseconds retry_max{30'000};
  std::chrono::milliseconds give_up_after{10 * 60 * 1000};
  Backoff::Random random;  // empty: Backoff::SystemRandom()
};

class LibraryDownloader {
 public:
  using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>()>;

  explicit LibraryDownloader(ChannelFactory channels, LibraryDownloaderOptions options = {});

  // Fetches library file `name` of the running action `action_id` into `dest` (mode 0600),
  // checking that its digest is `sha256`.
  Status Fetch(const std::string& action_id, const std::string& name, const std::string& sha256,
               const std::string& dest, std::stop_token stop);

 private:
  ChannelFactory channels_;
  LibraryDownloaderOptions options_;
};

}  // namespace quell::agent
