// What ArtifactUploader and LibraryFetcher share about retrying a transfer: which errors are
// worth another attempt, and a sleep that a stop request cuts short.
#pragma once

#include <chrono>
#include <stop_token>

#include "common/status.h"

namespace quell::agent {

// Worth another attempt on a fresh channel: the connection or the server, not the request.
bool IsTransientTransferError(const Status& s);

// Sleeps for `delay` unless `stop` is requested first; false when stopped.
bool SleepUnlessStopped(std::chrono::milliseconds delay, std::stop_token stop);

}  // namespace quell::agent
