// Device presence: when each device was last heard from. Heartbeats are frequent and each
// one only moves a device's last-seen time, so writing every one to the store would make
// the store's commit rate grow with the fleet (10,000 agents at 30 s = 333 commits/s).
// Presence keeps the newest time per device in memory and writes them all in one
// transaction per flush. A crash loses at most one flush period of last-seen times —
// never an action, a result or an audit entry, which are written through at once.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "server/store/store.h"

namespace quell::server {

class Presence {
 public:
  void Record(const std::string& device_id, UnixMillis seen);

  // The newest time recorded since the last successful flush, if any.
  std::optional<UnixMillis> Pending(const std::string& device_id) const;

  // Writes every pending time in one store call. On failure the times stay pending (newer
  // ones recorded meanwhile win) and are written by the next flush.
  Status Flush(Store& store);

 private:
  mutable std::mutex mu_;
  std::map<std::string, UnixMillis, std::less<>> pending_;
};

}  // namespace quell::server
