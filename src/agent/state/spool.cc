#include "agent/state/spool.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "common/files.h"
#include "common/logging.h"

namespace quell::agent {

namespace {

constexpr const char* kCounterFile = "next_sequence";
constexpr std::string_view kSuffix = ".msg";

bool IsDroppable(const quell::v1::AgentMessage& m) {
  return m.has_action_update() &&
         m.action_update().state() == quell::v1::ACTION_STATE_IN_PROGRESS;
}

void SetSequence(quell::v1::AgentMessage& m, uint64_t sequence) {
  if (m.has_action_update()) m.mutable_action_update()->set_sequence(sequence);
  if (m.has_notice()) m.mutable_notice()->set_sequence(sequence);
  if (m.has_detection()) m.mutable_detection()->set_sequence(sequence);
}

}  // namespace

uint64_t SequenceOf(const quell::v1::AgentMessage& message) {
  if (message.has_action_update()) return message.action_update().sequence();
  if (message.has_notice()) return message.notice().sequence();
  if (message.has_detection()) return message.detection().sequence();
  return 0;
}

Result<std::unique_ptr<Spool>> Spool::Open(std::string dir, size_t max_entries) {
  std::unique_ptr<Spool> spool(new Spool(std::move(dir), max_entries));
  QUELL_RETURN_IF_ERROR(MakeDirs(spool->dir_, 0700));
  QUELL_RETURN_IF_ERROR(spool->Load());
  return spool;
}

std::string Spool::PathOf(uint64_t sequence) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020" PRIu64, sequence);
  return dir_ + "/" + name + std::string(kSuffix);
}

Status Spool::Load() {
  auto log = Logger("agent.spool");
  if (auto counter = ReadFile(dir_ + "/" + kCounterFile); counter.ok()) {
    next_sequence_ = std::max<uint64_t>(1, std::strtoull(counter->c_str(), nullptr, 10));
  }
  QUELL_ASSIGN_OR_RETURN(std::vector<std::string> names, ListFiles(dir_));
  for (const std::string& name : names) {
    if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) continue;
    const std::string path = dir_ + "/" + name;
    quell::v1::AgentMessage message;
    auto bytes = ReadFile(path);
    if (!bytes.ok() || !message.ParseFromString(*bytes) || SequenceOf(message) == 0) {
      log->error("spooled message {} is unreadable; renamed to {}.corrupt", path, path);
      std::rename(path.c_str(), (path + ".corrupt").c_str());
      continue;
    }
    const uint64_t sequence = SequenceOf(message);
    next_sequence_ = std::max(next_sequence_, sequence + 1);
    pending_.emplace(sequence, std::move(message));
  }
  if (!pending_.empty()) log->info("{} spooled message(s) awaiting delivery", pending_.size());
  return Status::Ok();
}

Result<uint64_t> Spool::AllocateLocked() {
  const uint64_t sequence = next_sequence_;
  // Persist before use: a sequence handed out is never handed out again, even after a crash.
  QUELL_RETURN_IF_ERROR(
      WriteFileAtomic(dir_ + "/" + kCounterFile, std::to_string(sequence + 1) + "\n", 0600));
  next_sequence_ = sequence + 1;
  return sequence;
}

Result<uint64_t> Spool::NextSequence() {
  std::lock_guard lock(mu_);
  return AllocateLocked();
}

Status Spool::DropOldestProgressLocked() {
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (!IsDroppable(it->second)) continue;
    QUELL_RETURN_IF_ERROR(RemoveFile(PathOf(it->first)));
    pending_.erase(it);
    return Status::Ok();
  }
  return ResourceExhausted("nothing droppable");
}

Result<uint64_t> Spool::Append(quell::v1::AgentMessage& message) {
  if (!message.has_action_update() && !message.has_notice() && !message.has_detection()) {
    return InvalidArgument("only action updates, notices and detections are spooled");
  }
  std::lock_guard lock(mu_);
  while (pending_.size() >= max_entries_) {
    if (!DropOldestProgressLocked().ok()) {
      Logger("agent.spool")->warn("spool holds {} undelivered final messages (bound {})",
                                  pending_.size(), max_entries_);
      break;
    }
  }
  QUELL_ASSIGN_OR_RETURN(uint64_t sequence, AllocateLocked());
  SetSequence(message, sequence);
  std::string bytes;
  if (!message.SerializeToString(&bytes)) return Internal("cannot serialize spooled message");
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(PathOf(sequence), bytes, 0600));
  pending_.emplace(sequence, message);
  return sequence;
}

std::vector<quell::v1::AgentMessage> Spool::Pending() const {
  std::lock_guard lock(mu_);
  std::vector<quell::v1::AgentMessage> out;
  out.reserve(pending_.size());
  for (const auto& [sequence, message] : pending_) out.push_back(message);
  return out;
}

Status Spool::Ack(uint64_t sequence) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(sequence);
  if (it == pending_.end()) return Status::Ok();
  QUELL_RETURN_IF_ERROR(RemoveFile(PathOf(sequence)));
  pending_.erase(it);
  return Status::Ok();
}

size_t Spool::size() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

}  // namespace quell::agent
