#include "server/gateway/presence.h"

#include <algorithm>
#include <vector>

namespace quell::server {

void Presence::Record(const std::string& device_id, UnixMillis seen) {
  std::lock_guard lock(mu_);
  UnixMillis& slot = pending_[device_id];
  slot = std::max(slot, seen);
}

std::optional<UnixMillis> Presence::Pending(const std::string& device_id) const {
  std::lock_guard lock(mu_);
  auto it = pending_.find(device_id);
  if (it == pending_.end()) return std::nullopt;
  return it->second;
}

Status Presence::Flush(Store& store) {
  std::vector<std::pair<std::string, UnixMillis>> batch;
  {
    std::lock_guard lock(mu_);
    if (pending_.empty()) return Status::Ok();
    batch.assign(pending_.begin(), pending_.end());
    pending_.clear();
  }
  Status written = store.TouchDevices(batch);
  if (!written.ok()) {
    std::lock_guard lock(mu_);
    for (const auto& [device, seen] : batch) {
      UnixMillis& slot = pending_[device];
      slot = std::max(slot, seen);
    }
  }
  return written;
}

}  // namespace quell::server
