// The agent's durable outbox: messages the server must receive even if the agent is
// disconnected or restarted (final ActionUpdates, Notices, Detections). Each message is one
// file, <dir>/<sequence, 20 digits>.msg, holding the serialized AgentMessage; the sequence is
// persisted in <dir>/next_sequence and only ever grows, also across restarts. A message stays
// until the server acknowledges its sequence (UpdateAck), after persisting it.
//
// Bounded: beyond `max_entries`, the oldest IN_PROGRESS updates are dropped to make room;
// final updates, notices and detections are never dropped (a full spool of them keeps
// growing, and says so in the log — each one is a result or an alert someone waits for).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "quell/v1/agent.pb.h"

namespace quell::agent {

class Spool {
 public:
  static constexpr size_t kDefaultMaxEntries = 10'000;

  // Opens (creating it 0700 if needed) the spool in `dir` and loads what is pending. Files that
  // do not parse are renamed to *.corrupt and skipped.
  static Result<std::unique_ptr<Spool>> Open(std::string dir,
                                             size_t max_entries = kDefaultMaxEntries);

  // Assigns the next sequence to the message's ActionUpdate, Notice or Detection, writes it
  // durably and returns the sequence. InvalidArgument for any other message.
  Result<uint64_t> Append(quell::v1::AgentMessage& message);

  // A fresh sequence for a message that is not spooled (progress sent best effort).
  Result<uint64_t> NextSequence();

  // Everything not yet acknowledged, oldest first.
  std::vector<quell::v1::AgentMessage> Pending() const;

  // Deletes the message with this sequence. Unknown sequences are ignored (a duplicate ack).
  Status Ack(uint64_t sequence);

  size_t size() const;

 private:
  Spool(std::string dir, size_t max_entries) : dir_(std::move(dir)), max_entries_(max_entries) {}
  Status Load();
  Result<uint64_t> AllocateLocked();
  std::string PathOf(uint64_t sequence) const;
  Status DropOldestProgressLocked();

  const std::string dir_;
  const size_t max_entries_;
  mutable std::mutex mu_;
  uint64_t next_sequence_ = 1;
  std::map<uint64_t, quell::v1::AgentMessage> pending_;
};

// The sequence carried by an ActionUpdate, Notice or Detection message; 0 for anything else.
uint64_t SequenceOf(const quell::v1::AgentMessage& message);

}  // namespace quell::agent
