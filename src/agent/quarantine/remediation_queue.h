// Automatic remediation for BlockAndRemediate file indicators: the exec gate denies the exec
// and hands the file here; one worker thread stops and quarantines it (kill what runs it,
// remove its persistence, vault it), one file at a time, so the gate's thread never waits.
// The same file (hash and path) queued or handled recently is not queued again (a blocked
// program retried by cron would otherwise be quarantined every minute); a new copy of the hash
// at another path is.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "agent/quarantine/file_quarantine.h"
#include "common/clock.h"

namespace quell::agent::quarantine {

struct RemediationRequest {
  std::string sha256;
  std::string path;          // where the blocked exec found it (a hint)
  std::string indicator_id;  // why
  std::string seen = "exec";  // where it was seen: "exec" | "written" | "scan"
};

class RemediationQueue {
 public:
  // Called with the request and the operation's outcome (its result object or why it failed).
  using Done = std::function<void(const RemediationRequest&, const Result<nlohmann::json>&)>;

  // `quarantine` and `clock` must outlive this.
  RemediationQueue(FileQuarantine& quarantine, const Clock& clock, Done done,
                   UnixMillis repeat_after_ms = 10 * 60 * 1000);
  ~RemediationQueue();  // finishes the operation in progress, drops the rest (they are re-found
                        // by the gate after a restart, since the exec stays blocked)

  // Thread-safe and non-blocking.
  void Enqueue(RemediationRequest request);

 private:
  void Work(std::stop_token stop);

  FileQuarantine& quarantine_;
  const Clock& clock_;
  Done done_;
  const UnixMillis repeat_after_ms_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<RemediationRequest> queue_;
  std::map<std::pair<std::string, std::string>, UnixMillis> last_started_;  // (sha256, path)
  std::jthread worker_;  // last: started after everything it uses
};

}  // namespace quell::agent::quarantine
