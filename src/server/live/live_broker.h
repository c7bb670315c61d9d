// The server's side of interactive live response sessions (docs/api.md, "Interactive live
// response"): owns the client's WebSocket, parses lines, checks roles, runs the server-side commands, relays the
// agent-side ones as LiveCommand and their LiveOutput back, keeps jobs, enforces the idle
// timeout and per-command time limits, notices an agent that went away, and audits every
// command ("live.command").
//
// A session is a LiveResponse action with parameters {"Interactive": true}, created when the
// client opens the WebSocket and ended (LiveCancel{session, 0}, or a cancelled action when
// the agent is gone) when the client closes it, says "close", or stays idle.
//
// Thread-safety: every public method may be called from any thread. One mutex guards all
// sessions (there are at most max_live_response_sessions); WebSocket frames are queued and
// agent messages sent under it (neither blocks: SendText queues, AgentLink::Send enqueues
// on the stream), audit and action writes too; WebSocketConnection::Close() is called
// outside it. Nothing the broker calls under the lock calls back into the broker.
//
// The idle timer counts from the last client message or the last command's end, and does
// not run while a command (or a followed action) is still running.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "server/api/api_context.h"
#include "server/api/websocket.h"
#include "server/gateway/agent_gateway.h"

namespace quell::server::live {

struct BrokerOptions {
  UnixMillis idle_timeout_ms = 30 * 60 * 1000;  // no client message (and nothing running)
  UnixMillis grace_ms = 30'000;         // after an agent command's limit: TimedOut
  UnixMillis tick_ms = 500;             // ticker period; also how often followed actions are read
  size_t max_kept_output_bytes = 1 << 20;  // per command, replayed by fg
  size_t max_inline_audit_output = 64 << 10;  // larger output is audited as its SHA-256
};

class LiveSessionBroker final : public LiveOutputSink {
 public:
  // `api` (store, action center, session registry, clock, cap) must outlive the broker.
  LiveSessionBroker(ApiContext& api, BrokerOptions options = {});
  ~LiveSessionBroker() override;  // Stop()

  // Starts the ticker thread (Tick() every tick_ms of real time). Tests call Tick() instead.
  void Start();
  // Stops the ticker and ends every open session (reason "the server is stopping").
  void Stop();

  // The upgrade handler of GET /api/machines/{id}/liveresponse: authorizes (responder),
  // refuses with 404 (unknown machine), 409 DeviceNotConnected, 429 TooManyRequests,
  // 400 ActiveRequestAlreadyExists, or creates the session's action and returns its handler.
  http::UpgradeDecision Open(http::Request& request);

  // LiveOutputSink: output of an agent command; dropped unless it names a running command of
  // a session on `device_id`.
  void OnLiveOutput(const std::string& device_id, const quell::v1::LiveOutput& output) override;

  // One pass of the timers: idle sessions, commands past their hard limit, agent commands
  // whose stream is gone, followed actions, sessions whose action ended elsewhere.
  void Tick();

  size_t SessionCount() const;

 private:
  struct Command;
  struct Session;
  class Socket;
  friend class Socket;
  using CloseList = std::vector<std::pair<std::shared_ptr<http::WebSocketConnection>, std::string>>;

  void OnSocketOpen(const std::string& session_id, std::shared_ptr<http::WebSocketConnection> c);
  void OnSocketText(const std::string& session_id, const std::string& text);
  void OnSocketClose(const std::string& session_id);

  // All below: REQUIRES mu_ held.
  void HandleLine(Session& s, const std::string& line);
  void RunServerCommand(Session& s, Command& c, bool as_json);
  void StartAgentCommand(Session& s, Command& c);
  void StartActionCommand(Session& s, Command& c);
  void CancelCommand(Session& s, Command& c);
  void AppendOutput(Session& s, Command& c, const std::string& text);
  void Finish(Session& s, Command& c, const std::string& status, const std::string& error);
  void FollowAction(Session& s, Command& c);
  // Ends the session: running commands end, the agent is told (or the action cancelled),
  // "closed" is sent when `tell_client`; the connection to close is added to `closes`.
  void EndSession(const std::string& session_id, const std::string& reason, bool tell_client,
                  CloseList& closes);
  void Send(Session& s, const nlohmann::json& message);
  void Audit(const std::string& actor, const std::string& operation, const std::string& target,
             const nlohmann::json& details);

  ApiContext& api_;
  const BrokerOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Session>> sessions_;  // by session (action) id

  std::mutex ticker_mu_;
  std::condition_variable ticker_cv_;
  bool stopping_ = false;
  std::thread ticker_;
};

// GET /api/machines/{id}/liveresponse (WebSocket), GET /api/liveresponse/sessions/{id}/commands
// and GET /api/liveresponse/sessions/{id}/commands/{commandId}/download.
void AddLiveResponseRoutes(http::Router& router, ApiContext& api, LiveSessionBroker& broker);

// The commands of a session as the audit log holds them (the commands route's "value").
Result<nlohmann::json> ListSessionCommands(ApiContext& api, const std::string& session_id);

}  // namespace quell::server::live
