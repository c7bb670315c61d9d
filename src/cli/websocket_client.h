// A WebSocket client over TLS for the server's conversational endpoints (interactive live
// response). Connects with the same trust and bearer token as ApiClient; afterwards one
// network thread owns the socket: it reads messages into a queue the caller polls through a
// file descriptor, and writes what Send() queued, one frame at a time, in order.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cli/api_client.h"
#include "common/status.h"

namespace quell::cli {

struct WebSocketEvent {
  enum class Kind {
    kText,    // one text message; `text` is its payload
    kClosed,  // the connection ended cleanly (close frame); `text` is the close reason
    kError,   // the connection failed; `text` says why
  };
  Kind kind = Kind::kText;
  std::string text;
};

// Why the server refused the upgrade (an HTTP answer instead of 101).
struct WebSocketRefusal {
  int http_status = 0;
  std::string body;
};

// "<code>: <message> (HTTP <n>)" from a JSON error body {"error":{"code","message"}}, or the
// start of the body when it is not one.
std::string RefusalMessage(const WebSocketRefusal& refusal);

class WebSocketClient {
 public:
  // Opens wss://<options.base_url host><base path><target>. Errors are for people, as
  // ApiClient's; a refusal before the upgrade is FailedPrecondition with RefusalMessage as
  // its message, and `refusal` (when not null) gets the status and body.
  static Result<std::unique_ptr<WebSocketClient>> Connect(const ApiClientOptions& options,
                                                          const std::string& target,
                                                          WebSocketRefusal* refusal = nullptr);
  // Stops the network thread and drops the connection (no close handshake).
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  // Queues one text frame. Thread-safe; frames leave in the order queued. Dropped after
  // Close() or once the connection has ended.
  void Send(std::string text);
  // Sends what is queued, then a close frame (1000). The server's close then arrives as a
  // kClosed event.
  void Close();

  // Readable (poll POLLIN) while events are waiting; TryPop() resets it when the queue
  // empties.
  int notify_fd() const;
  // Takes the oldest event, if any. After kClosed or kError no further events come.
  std::optional<WebSocketEvent> TryPop();
  // Waits up to `timeout` for an event.
  std::optional<WebSocketEvent> WaitPop(std::chrono::milliseconds timeout);

  struct Impl;

 private:
  explicit WebSocketClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quell::cli
