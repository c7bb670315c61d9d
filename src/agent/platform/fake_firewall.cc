#include "agent/platform/fake_firewall.h"

namespace quell::agent {

Status FakeFirewall::TakeInjectedFailure() {
  if (!next_failure_) return Status::Ok();
  Status failure = std::move(*next_failure_);
  next_failure_.reset();
  return failure;
}

Status FakeFirewall::ReplaceTable(const std::string& family, const std::string& name,
                                  const std::string& ruleset) {
  std::lock_guard lock(mutex_);
  ++replace_calls_;
  QUELL_RETURN_IF_ERROR(TakeInjectedFailure());
  tables_[{family, name}] = ruleset;
  return Status::Ok();
}

Status FakeFirewall::DeleteTable(const std::string& family, const std::string& name) {
  std::lock_guard lock(mutex_);
  QUELL_RETURN_IF_ERROR(TakeInjectedFailure());
  tables_.erase({family, name});
  return Status::Ok();
}

Result<std::optional<std::string>> FakeFirewall::ReadTable(const std::string& family,
                                                           const std::string& name) {
  std::lock_guard lock(mutex_);
  QUELL_RETURN_IF_ERROR(TakeInjectedFailure());
  auto it = tables_.find({family, name});
  if (it == tables_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

void FakeFirewall::FailNextCall(Status status) {
  std::lock_guard lock(mutex_);
  next_failure_ = std::move(status);
}

void FakeFirewall::LoseTable(const std::string& family, const std::string& name) {
  std::lock_guard lock(mutex_);
  tables_.erase({family, name});
}

void FakeFirewall::TamperTable(const std::string& family, const std::string& name,
                               std::string ruleset) {
  std::lock_guard lock(mutex_);
  tables_[{family, name}] = std::move(ruleset);
}

std::optional<std::string> FakeFirewall::Table(const std::string& family,
                                               const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = tables_.find({family, name});
  if (it == tables_.end()) return std::nullopt;
  return it->second;
}

int FakeFirewall::replace_calls() const {
  std::lock_guard lock(mutex_);
  return replace_calls_;
}

}  // namespace quell::agent
