#include "agent/platform/exec_gate_fake.h"

#include <fcntl.h>
#include <unistd.h>

namespace quell::agent {

FakeExecGate::~FakeExecGate() { Close(); }

Result<uint64_t> FakeExecGate::Exec(const std::string& path, pid_t pid) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return InvalidArgument("fake exec: cannot open " + path);
  std::lock_guard lock(mutex_);
  const uint64_t id = next_id_++;
  queue_.push_back(ExecRequest{.fd = fd, .pid = pid, .id = id});
  outstanding_[id] = fd;
  cv_.notify_all();
  return id;
}

void FakeExecGate::InjectMountsChanged() {
  std::lock_guard lock(mutex_);
  mounts_changed_ = true;
  cv_.notify_all();
}

void FakeExecGate::InjectOverflow() {
  std::lock_guard lock(mutex_);
  overflow_ = true;
  cv_.notify_all();
}

void FakeExecGate::FailNextOpen(Status s) { std::lock_guard l(mutex_); fail_open_ = std::move(s); }
void FakeExecGate::FailNextMark(Status s) { std::lock_guard l(mutex_); fail_mark_ = std::move(s); }
void FakeExecGate::FailNextWait(Status s) { std::lock_guard l(mutex_); fail_wait_ = std::move(s); }
void FakeExecGate::FailNextRespond(Status s) {
  std::lock_guard l(mutex_);
  fail_respond_ = std::move(s);
}

std::optional<bool> FakeExecGate::AwaitAnswer(uint64_t id, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return answers_.count(id) > 0; });
  auto it = answers_.find(id);
  if (it == answers_.end()) return std::nullopt;
  return it->second;
}

std::set<std::string> FakeExecGate::Marks() const {
  std::lock_guard lock(mutex_);
  return marks_;
}

size_t FakeExecGate::Pending() const {
  std::lock_guard lock(mutex_);
  return outstanding_.size();
}

size_t FakeExecGate::ReleasedOnClose() const {
  std::lock_guard lock(mutex_);
  return released_on_close_;
}

int FakeExecGate::open_count() const {
  std::lock_guard lock(mutex_);
  return open_count_;
}

Status FakeExecGate::Open() {
  std::lock_guard lock(mutex_);
  if (fail_open_) {
    Status s = *fail_open_;
    fail_open_.reset();
    return s;
  }
  if (open_) return FailedPrecondition("exec gate already open");
  open_ = true;
  ++open_count_;
  return Status::Ok();
}

Status FakeExecGate::MarkMount(const std::string& mount_point) {
  std::lock_guard lock(mutex_);
  if (!open_) return FailedPrecondition("exec gate is not open");
  if (fail_mark_) {
    Status s = *fail_mark_;
    fail_mark_.reset();
    return s;
  }
  marks_.insert(mount_point);
  return Status::Ok();
}

Result<ExecWait> FakeExecGate::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!open_) return FailedPrecondition("exec gate is not open");
  if (fail_wait_) {
    Status s = *fail_wait_;
    fail_wait_.reset();
    return s;
  }
  cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || mounts_changed_ || overflow_; });
  ExecWait out;
  out.mounts_changed = std::exchange(mounts_changed_, false);
  out.overflow = std::exchange(overflow_, false);
  while (!queue_.empty()) {
    out.requests.push_back(queue_.front());
    queue_.pop_front();
  }
  return out;
}

Status FakeExecGate::Respond(const ExecRequest& request, bool allow) {
  std::lock_guard lock(mutex_);
  auto it = outstanding_.find(request.id);
  if (it != outstanding_.end()) {
    close(it->second);
    outstanding_.erase(it);
  }
  Status s;
  if (fail_respond_) {
    s = *fail_respond_;
    fail_respond_.reset();
  } else if (open_) {
    answers_[request.id] = allow;
  }
  cv_.notify_all();
  return s;
}

void FakeExecGate::Close() {
  std::lock_guard lock(mutex_);
  if (!open_) return;
  open_ = false;
  marks_.clear();
  // As the kernel does: every waiter is released with "allow".
  for (auto& [id, fd] : outstanding_) {
    close(fd);
    answers_.emplace(id, true);
    ++released_on_close_;
  }
  outstanding_.clear();
  queue_.clear();
  cv_.notify_all();
}

bool FakeExecGate::IsOpen() const {
  std::lock_guard lock(mutex_);
  return open_;
}

}  // namespace quell::agent
