#include "agent/quarantine/remediation_queue.h"

#include "common/ids.h"

namespace quell::agent::quarantine {

RemediationQueue::RemediationQueue(FileQuarantine& quarantine, const Clock& clock, Done done,
                                   UnixMillis repeat_after_ms)
    : quarantine_(quarantine),
      clock_(clock),
      done_(std::move(done)),
      repeat_after_ms_(repeat_after_ms),
      worker_([this](std::stop_token stop) { Work(stop); }) {}

RemediationQueue::~RemediationQueue() {
  worker_.request_stop();
  cv_.notify_all();
}

void RemediationQueue::Enqueue(RemediationRequest request) {
  {
    std::lock_guard lock(mu_);
    const UnixMillis now = clock_.Now();
    auto key = std::make_pair(request.sha256, request.path);
    auto it = last_started_.find(key);
    if (it != last_started_.end() && now - it->second < repeat_after_ms_) return;
    if (last_started_.size() >= 4096) last_started_.clear();  // bounded; a repeat is only a cost
    last_started_[std::move(key)] = now;
    queue_.push_back(std::move(request));
  }
  cv_.notify_all();
}

void RemediationQueue::Work(std::stop_token stop) {
  while (true) {
    RemediationRequest request;
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait(lock, stop, [&] { return !queue_.empty(); })) return;
      request = std::move(queue_.front());
      queue_.pop_front();
    }
    // The operation id names it in the vault and the journal, like an action id would.
    Result<nlohmann::json> outcome = quarantine_.StopAndQuarantine(
        {.id = "indicator-" + NewUuid(), .sha256 = request.sha256, .path_hint = request.path});
    if (done_) done_(request, outcome);
  }
}

}  // namespace quell::agent::quarantine
