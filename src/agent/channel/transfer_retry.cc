#include "agent/channel/transfer_retry.h"

#include <condition_variable>
#include <mutex>

namespace quell::agent {

bool IsTransientTransferError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kInternal:
    case StatusCode::kFailedPrecondition:  // an offset moved: ask again where things stand
      return true;
    default: return false;
  }
}

bool SleepUnlessStopped(std::chrono::milliseconds delay, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, delay, [] { return false; }) && !stop.stop_requested();
}

}  // namespace quell::agent
