// FanotifyExecGate: ExecGate on fanotify (FAN_CLASS_CONTENT, FAN_OPEN_EXEC_PERM, mount marks).
// Mount table changes are seen through POLLPRI on /proc/self/mountinfo.
#pragma once

#include <atomic>
#include <mutex>

#include "agent/platform/exec_gate.h"

namespace quell::agent {

class FanotifyExecGate final : public ExecGate {
 public:
  FanotifyExecGate() = default;
  ~FanotifyExecGate() override;
  FanotifyExecGate(const FanotifyExecGate&) = delete;
  FanotifyExecGate& operator=(const FanotifyExecGate&) = delete;

  Status Open() override;
  Status MarkMount(const std::string& mount_point) override;
  Result<ExecWait> Wait(std::chrono::milliseconds timeout) override;
  Status Respond(const ExecRequest& request, bool allow) override;
  void Close() override;
  bool IsOpen() const override;

 private:
  mutable std::mutex mutex_;  // guards the fds against Close from another thread
  int fan_fd_ = -1;
  int mountinfo_fd_ = -1;
  uint64_t next_id_ = 1;
};

}  // namespace quell::agent
