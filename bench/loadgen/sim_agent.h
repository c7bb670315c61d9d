// One simulated agent: its own gRPC channel (its own TCP+TLS connection, its own client
// certificate) and one Connect stream driven by the callback API, so ten thousand of them
// need no thread each. It speaks the agent side of proto/quell/v1/agent.proto just enough to
// be measured: Hello, heartbeats, and an immediate ACTION_STATE_SUCCEEDED for every
// DiagnosticNoop it is asked to run.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "agent/channel/endpoint.h"
#include "agent/state/identity_store.h"
#include "quell/v1/agent.grpc.pb.h"

namespace quell::bench {

using SteadyTime = std::chrono::steady_clock::time_point;

// What a fleet wants to hear from its agents. Called on gRPC threads, concurrently for
// different agents; implementations must be thread-safe and must not block.
class SimAgentObserver {
 public:
  virtual ~SimAgentObserver() = default;
  virtual void OnWelcome(size_t index, uint32_t heartbeat_interval_seconds) = 0;
  // The server acknowledged (so persisted) the Succeeded update for `action_id` at `at`.
  virtual void OnSucceededAcked(size_t index, const std::string& action_id, SteadyTime at) = 0;
  // The stream ended; `welcomed` says whether it had got as far as Welcome.
  virtual void OnEnded(size_t index, const grpc::Status& status, bool welcomed) = 0;
};

class SimAgent final
    : public grpc::ClientBidiReactor<quell::v1::AgentMessage, quell::v1::ServerMessage> {
 public:
  // The channel is built here, the stream opens in Start(). The identity is not kept: the
  // channel credentials hold their own copy.
  SimAgent(size_t index, const agent::ServerEndpoint& endpoint, const agent::Identity& identity,
           quell::v1::Inventory inventory, SimAgentObserver& observer);

  // Opens the stream and sends Hello. Call once.
  void Start();
  // Queues a heartbeat if the stream is up; a no-op otherwise. Thread-safe.
  void SendHeartbeat();
  // Cancels the stream; OnEnded follows. Thread-safe, idempotent.
  void Stop();

  const std::string& hostname() const { return inventory_.hostname(); }

  // grpc::ClientBidiReactor
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void Enqueue(quell::v1::AgentMessage message);  // REQUIRES: mu_ not held
  void HandleActionRequest(const quell::v1::ActionRequest& request);
  void HandleAck(uint64_t sequence);

  const size_t index_;
  quell::v1::Inventory inventory_;
  SimAgentObserver& observer_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<quell::v1::AgentGateway::Stub> stub_;
  grpc::ClientContext context_;
  quell::v1::ServerMessage incoming_;  // touched only by the read chain

  std::mutex mu_;
  // The hold taken in Start() keeps OnDone away while StartWrite may still be called; it is
  // released once (hold_released_) when reads stop, after closing_ is set under mu_.
  bool closing_ = false;
  bool hold_released_ = false;
  bool welcomed_ = false;
  bool writing_ = false;
  std::deque<quell::v1::AgentMessage> outgoing_;  // front is in flight while writing_
  uint64_t next_sequence_ = 0;
  std::vector<std::pair<uint64_t, std::string>> unacked_;  // (sequence, action id)
};

}  // namespace quell::bench
