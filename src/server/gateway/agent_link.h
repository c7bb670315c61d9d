// A handle on one connected agent stream that outlives the stream itself: the registry and
// the action center hold links, and a link whose stream has ended silently drops what is
// sent to it (the device gets its open actions again when it reconnects).
//
// Flow control for bulk senders (the indicator publisher): Queued() says how much the stream
// still holds, and the drain callback says when that shrank, so a sender can keep a small,
// fixed amount in flight per agent instead of queueing a whole transfer.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "quell/v1/agent.pb.h"

namespace quell::server {

// Messages a stream has accepted and not yet handed to the transport (the one being
// written included), and their serialized size.
struct AgentBacklog {
  size_t messages = 0;
  size_t bytes = 0;
};

class AgentStream {
 public:
  virtual ~AgentStream() = default;
  // Queues a message for the agent. Called with the link's lock held; the call into gRPC
  // must be the implementation's last statement, because gRPC may run the stream's
  // completion (and so its destruction) inline.
  virtual void Enqueue(quell::v1::ServerMessage message) = 0;
  // Ends the stream with an error status. Same rules as Enqueue.
  virtual void Terminate(int grpc_code, const std::string& reason) = 0;
  // What is queued now. Called with the link's lock held. A stream that hands every message
  // on at once (test doubles) has no backlog. A stream that queues must call
  // AgentLink::Drained() after each message leaves its queue.
  virtual AgentBacklog Backlog() { return {}; }
};

class AgentLink {
 public:
  AgentLink(std::string device_id, AgentStream* stream)
      : device_id_(std::move(device_id)), stream_(stream) {}

  const std::string& device_id() const { return device_id_; }

  // Both return false when the stream has already ended.
  bool Send(quell::v1::ServerMessage message) {
    std::lock_guard lock(mu_);
    if (stream_ == nullptr) return false;
    stream_->Enqueue(std::move(message));
    return true;
  }
  bool Terminate(int grpc_code, const std::string& reason) {
    std::lock_guard lock(mu_);
    if (stream_ == nullptr) return false;
    stream_->Terminate(grpc_code, reason);
    return true;
  }

  // The stream's backlog; nullopt once the stream has ended.
  std::optional<AgentBacklog> Queued() {
    std::lock_guard lock(mu_);
    if (stream_ == nullptr) return std::nullopt;
    return stream_->Backlog();
  }

  // `on_drain` runs after the stream's backlog shrank and when the stream ends, on the
  // stream's thread, with the link's lock held: it must only wake its owner (it must not
  // wait for anything that may call into this link). Replaces the previous callback; after
  // SetOnDrain returns, the previous one is not running and will not run again.
  void SetOnDrain(std::function<void()> on_drain) {
    std::lock_guard lock(mu_);
    on_drain_ = std::move(on_drain);
  }

  // Called by the stream after a message left its queue.
  void Drained() {
    std::lock_guard lock(mu_);
    if (on_drain_) on_drain_();
  }

  // Called by the stream when it is done, before it is destroyed.
  void Detach() {
    std::lock_guard lock(mu_);
    stream_ = nullptr;
    if (on_drain_) on_drain_();
  }

 private:
  const std::string device_id_;
  // Recursive: a stream that completes inline detaches from inside Send/Terminate.
  std::recursive_mutex mu_;
  AgentStream* stream_;  // not owned; null once the stream ended
  std::function<void()> on_drain_;
};

}  // namespace quell::server
