// The agent's DetectionSink: every detection becomes a proto Detection with a fresh
// detection_id, is appended to the durable spool (before Report returns) and is then sent on
// the live stream when there is one. The spool resends it after every reconnect until the
// server acknowledges its sequence (UpdateAck), so a detection made while the agent is
// offline arrives later, once; the server deduplicates by detection_id if an ack was lost.
//
// The sink exists from agent start (detectors such as the execution restriction report before
// the first connection); the channel is attached once it exists and detached before it goes.
#pragma once

#include <functional>
#include <mutex>
#include <string>

#include "agent/channel/message_sink.h"
#include "agent/detect/detection.h"
#include "agent/state/spool.h"
#include "common/clock.h"

namespace quell::agent {

// The wire form of `detection`, with `detection_id` and without a sequence (the spool assigns
// it). A detection without a time gets `now`. Pure.
quell::v1::AgentMessage DetectionToMessage(const Detection& detection,
                                           const std::string& detection_id, UnixMillis now);

class SpooledDetectionSink final : public DetectionSink {
 public:
  using IdGenerator = std::function<std::string()>;

  // `spool` and `clock` must outlive the sink. `new_id` defaults to NewUuid.
  SpooledDetectionSink(Spool& spool, const Clock& clock, IdGenerator new_id = nullptr);

  // Spools, then sends if a channel is attached. A detection that cannot be spooled (disk
  // full) is still sent best effort and logged as an error: losing it silently is worse.
  void Report(Detection detection) override;

  // Where detections go live; nullptr detaches. The channel's own Send must be best effort
  // (MessageSink::Send): durability comes from the spool.
  void Attach(MessageSink* live);

  // Detections reported so far (for logs and tests).
  uint64_t reported() const;

 private:
  Spool& spool_;
  const Clock& clock_;
  IdGenerator new_id_;
  mutable std::mutex mu_;
  MessageSink* live_ = nullptr;  // guarded by mu_
  uint64_t reported_ = 0;        // guarded by mu_
};

}  // namespace quell::agent
