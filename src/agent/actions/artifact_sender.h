// How actions hand files to the server and get files from it, as functions: the agent binds
// them to ArtifactTransfer (ArtifactUploader, FetchLibraryFile); unit tests bind fakes. Keeps
// actions free of gRPC.
#pragma once

#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>

#include "common/status.h"

namespace quell::agent {

struct SentArtifact {
  std::string sha256;
  uint64_t size = 0;
};

// Sends a finished file to the server as an artifact of an action (resumable; retried across
// reconnects). `progress` gets the bytes the server holds and the total.
using ArtifactSender = std::function<Result<SentArtifact>(
    const std::string& action_id, const std::string& artifact_name, const std::string& path,
    std::stop_token stop, const std::function<void(uint64_t stored, uint64_t total)>& progress)>;

// Fetches library file `name` (named by the running action `action_id`, whose parameters give
// its `sha256`) into `dest_path`: written beside it and renamed once the digest matches.
using LibraryFetcher = std::function<Status(const std::string& action_id, const std::string& name,
                                            const std::string& sha256,
                                            const std::string& dest_path, std::stop_token stop)>;

}  // namespace quell::agent
