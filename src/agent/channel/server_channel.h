// The agent's long-lived Connect stream to quell-server (mTLS with the device identity).
//
// Each session: Hello (inventory + running action ids) first, then everything in the spool,
// then heartbeats every interval; server messages are dispatched to the Handler on the reader
// thread. When a session ends, the next one starts after a jittered exponential backoff
// (reset once the server sends Welcome). A refused certificate (UNAUTHENTICATED: revoked or
// unknown device) is logged as an error and retried at the maximum backoff.
//
// Threads: Run() is the reader; one heartbeat thread per session; Send/SendDurable may be
// called from any thread (writes are serialized by a mutex).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "agent/channel/backoff.h"
#include "agent/channel/endpoint.h"
#include "agent/channel/message_sink.h"
#include "agent/state/identity_store.h"
#include "agent/state/spool.h"
#include "common/clock.h"
#include "quell/v1/agent.grpc.pb.h"

namespace quell::agent {

class ServerChannel final : public MessageSink {
 public:
  // Receives what the server asks for. Called on the reader thread: must not block for long.
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnActionRequest(const quell::v1::ActionRequest& request) = 0;
    virtual void OnCancelAction(const quell::v1::CancelAction& cancel) = 0;
    // One IndicatorDelta message (possibly one chunk of several). The handler applies and
    // persists it, then acknowledges through Send (AgentMessage.indicator_ack).
    virtual void OnIndicatorDelta(const quell::v1::IndicatorDelta& /*delta*/) {}
    // A command of an interactive live response session, and a cancel of one (command_id 0:
    // the whole session). Must not block: the command runs elsewhere.
    virtual void OnLiveCommand(const quell::v1::LiveCommand& /*command*/) {}
    virtual void OnLiveCancel(const quell::v1::LiveCancel& /*cancel*/) {}
  };

  struct Options {
    ServerEndpoint endpoint;
    Identity identity;
    std::chrono::seconds heartbeat_interval{30};  // the server's Welcome may override it
    std::chrono::milliseconds reconnect_initial{500};
    std::chrono::milliseconds reconnect_max{30'000};
    Backoff::Random random = Backoff::SystemRandom();
    const Clock* clock = &SystemClock::Instance();
    std::function<quell::v1::Inventory()> inventory;
    std::function<std::vector<std::string>()> running_action_ids;
    // The applied indicator version for the Hello (Hello.indicator_version); called on the
    // reader thread at the start of every session, before the Hello is sent, so it also
    // marks the point where a transfer cut off by the previous session is dropped.
    std::function<uint64_t()> indicator_version;
  };

  // `spool` and `handler` must outlive this object.
  ServerChannel(Options options, Spool& spool, Handler& handler);

  // Connects and reconnects until `stop` is requested, then returns promptly (an in-flight
  // read or write is cancelled).
  void Run(std::stop_token stop);

  void Send(quell::v1::AgentMessage message) override;
  Status SendDurable(quell::v1::AgentMessage message) override;

  // True between the server's Welcome and the end of that session.
  bool connected() const { return connected_; }
  // Sessions the server welcomed so far.
  uint64_t sessions() const { return sessions_; }

 private:
  using Stream = grpc::ClientReaderWriter<quell::v1::AgentMessage, quell::v1::ServerMessage>;

  grpc::Status RunSession(std::stop_token stop);
  void Dispatch(const quell::v1::ServerMessage& message);
  void HeartbeatLoop(std::stop_token stop);
  void SleepFor(std::stop_token stop, std::chrono::milliseconds delay);

  const Options options_;
  Spool& spool_;
  Handler& handler_;
  Backoff backoff_;

  std::mutex write_mu_;
  Stream* stream_ = nullptr;  // guarded by write_mu_; set while a session can take writes

  std::mutex context_mu_;
  grpc::ClientContext* context_ = nullptr;  // guarded by context_mu_; the live session's

  std::mutex sleep_mu_;
  std::condition_variable_any sleep_cv_;

  std::atomic<uint32_t> heartbeat_seconds_;
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> sessions_{0};
};

}  // namespace quell::agent
