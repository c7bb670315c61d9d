// FakeExecGate: an ExecGate that replays scripted executions (real files, opened read-only
// as the kernel would) and injects faults on command. For unit tests of the restriction.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "agent/platform/exec_gate.h"

namespace quell::agent {

class FakeExecGate final : public ExecGate {
 public:
  ~FakeExecGate() override;

  // ---- scripting (any thread) ----
  // Queues an execution of `path` by `pid`; returns its request id. InvalidArgument if the
  // file cannot be opened.
  Result<uint64_t> Exec(const std::string& path, pid_t pid);
  void InjectMountsChanged();
  void InjectOverflow();
  void FailNextOpen(Status s);
  void FailNextMark(Status s);
  void FailNextWait(Status s);
  void FailNextRespond(Status s);

  // The answer given to request `id`, waiting up to `timeout` for it; nullopt if none.
  std::optional<bool> AwaitAnswer(uint64_t id, std::chrono::milliseconds timeout);
  std::set<std::string> Marks() const;
  size_t Pending() const;  // queued or handed out but unanswered
  // Requests still unanswered when the gate was closed; the kernel allows them.
  size_t ReleasedOnClose() const;
  int open_count() const;

  // ---- ExecGate ----
  Status Open() override;
  Status MarkMount(const std::string& mount_point) override;
  Result<ExecWait> Wait(std::chrono::milliseconds timeout) override;
  Status Respond(const ExecRequest& request, bool allow) override;
  void Close() override;
  bool IsOpen() const override;

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
  int open_count_ = 0;
  uint64_t next_id_ = 1;
  std::deque<ExecRequest> queue_;
  std::map<uint64_t, int> outstanding_;  // id -> fd
  std::map<uint64_t, bool> answers_;
  std::set<std::string> marks_;
  bool mounts_changed_ = false, overflow_ = false;
  size_t released_on_close_ = 0;
  std::optional<Status> fail_open_, fail_mark_, fail_wait_, fail_respond_;
};

}  // namespace quell::agent
