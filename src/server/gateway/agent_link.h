// A handle on one connected agent stream that outlives the stream itself: the registry and
// the action center hold links, and a link whose stream has ended silently drops what is
// sent to it (the device gets its open actions again when it reconnects).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "quell/v1/agent.pb.h"

namespace quell::server {

class AgentStream {
 public:
  virtual ~AgentStream() = default;
  // Queues a message for the agent. Called with the link's lock held; the call into gRPC
  // must be the implementation's last statement, because gRPC may run the stream's
  // completion (and so its destruction) inline.
  virtual void Enqueue(quell::v1::ServerMessage message) = 0;
  // Ends the stream with an error status. Same rules as Enqueue.
  virtual void Terminate(int grpc_code, const std::string& reason) = 0;
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

  // Called by the stream when it is done, before it is destroyed.
  void Detach() {
    std::lock_guard lock(mu_);
    stream_ = nullptr;
  }

 private:
  const std::string device_id_;
  // Recursive: a stream that completes inline detaches from inside Send/Terminate.
  std::recursive_mutex mu_;
  AgentStream* stream_;  // not owned; null once the stream ended
};

}  // namespace quell::server
