// The REST API's HTTPS listener: TLS 1.2+, HTTP/1.1 keep-alive, requests handed to a Router.
//
// Each connection runs on its own strand; handlers run synchronously on the IO threads, so a
// slow handler holds one of `threads`. What a client sends never stops the server: malformed
// HTTP gets 400, a body over its route's limit 413, oversize headers 431 (each then closes the
// connection), and a client that stalls longer than `idle_timeout` on any read or write is
// disconnected. Every response carries Content-Type and Content-Length (except 204/304,
// which have no body). One debug line per request: method, path, status, duration; headers
// are never logged (Authorization carries tokens).
//
// WebSocket routes (Router::AddWebSocket, websocket.h): an upgrade request is handed to the
// route's UpgradeHandler; an accepted one continues as a WebSocket on the same TLS stream and
// strand, with its own timeouts instead of idle_timeout. One debug line when it opens and one
// when it closes (path, remote, duration).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/api/router.h"

namespace quell::server::http {

struct ServerOptions {
  std::string address = "127.0.0.1";    // IPv4 or IPv6 literal to bind
  uint16_t port = 0;                    // 0 = pick a free port; see HttpsServer::port()
  std::string cert_pem, key_pem;        // server certificate chain (leaf first) and key (PEM)
  // Larger -> 413 JSON error, connection closed. A route may declare its own limit
  // (RouteOptions::max_body_bytes), which then applies instead.
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;   // larger -> 431 JSON error, connection closed
  int threads = 2;                      // IO threads, also the handler concurrency
  std::chrono::seconds idle_timeout{60};  // per read/write: TLS handshake, request, response
};

class HttpsServer {
 public:
  // `router` must outlive the server and not change while it runs.
  HttpsServer(ServerOptions options, const Router& router);
  ~HttpsServer();  // Stop()s
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // Loads the certificate, binds, listens and starts the IO threads. InvalidArgument for a
  // bad address or certificate/key, Unavailable when the address cannot be bound (e.g. in
  // use), FailedPrecondition when already started.
  Status Start();

  // The bound port (the chosen one when options.port was 0); 0 before Start().
  uint16_t port() const;

  // Closes the listener and every connection (in-flight requests are abandoned) and joins
  // the IO threads; open WebSockets get OnClose (on this thread) and their connections go
  // inert. Idempotent. Must not be called from a handler.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quell::server::http
