// WebSocket endpoints on the REST listener (RFC 6455 over the same TLS port), for the few
// resources that are conversations rather than requests: interactive live response.
//
// A route added with Router::AddWebSocket answers a GET with `Upgrade: websocket`. Its
// UpgradeHandler sees the request like any handler (path parameters, headers, the bearer
// token) and either refuses with an ordinary HTTP response (401, 403, 404, 400, 429, ...) or
// accepts by returning the WebSocketHandler that will own the conversation. A plain GET
// (no Upgrade header) on such a route gets 426 Upgrade Required.
//
// An open WebSocket is not subject to ServerOptions::idle_timeout: the server pings a peer
// quiet for 30 s and drops it when nothing (not even the pong) arrives for 60 s; the opening
// and closing handshakes must each finish within 30 s. No compression, text frames only.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "server/api/http_types.h"

namespace quell::server::http {

// The server's side of one open WebSocket. Thread-safe; may be kept and used from any thread
// after OnOpen, also after the connection is gone (then calls do nothing).
class WebSocketConnection {
 public:
  virtual ~WebSocketConnection() = default;
  // Queues one text frame; frames leave in the order they were queued.
  virtual void SendText(std::string text) = 0;
  // Sends what is queued, then a close frame (code 1000, `reason` cut to 123 bytes), and
  // ends the connection. Later SendText calls are dropped.
  virtual void Close(std::string reason) = 0;
};

// The application's side. Callbacks run on the server's IO threads, one at a time per
// connection, in order: OnOpen, OnText*, OnClose. They must not block (queue work instead).
class WebSocketHandler {
 public:
  virtual ~WebSocketHandler() = default;
  // After the handshake succeeded.
  virtual void OnOpen(std::shared_ptr<WebSocketConnection> connection) = 0;
  // One complete text message from the client. Binary messages and messages over the
  // route's size limit close the connection (1003 / 1009) and are not delivered; neither are
  // messages arriving after Close() was called. An exception thrown here (or from OnOpen) is
  // logged and closes the connection with 1011.
  virtual void OnText(const std::string& text) = 0;
  // Exactly once, when the connection has ended for any reason (client close, Close(),
  // network error, server stop). Also when the handshake failed after the upgrade was
  // accepted (then without OnOpen). The connection is already inert when it runs. On
  // HttpsServer::Stop() it runs on the thread calling Stop(), after the IO threads ended.
  virtual void OnClose() = 0;
};

struct UpgradeDecision {
  // Accepts the upgrade when not null; otherwise `refusal` is sent as a normal response.
  std::shared_ptr<WebSocketHandler> handler;
  Response refusal;
};

// Runs on a server IO thread like any Handler (thread-safe, not blocking). An exception
// becomes a 500 refusal.
using UpgradeHandler = std::function<UpgradeDecision(Request&)>;

struct WebSocketOptions {
  size_t max_message_bytes = 64 << 10;  // a larger client message closes with 1009
};

}  // namespace quell::server::http
