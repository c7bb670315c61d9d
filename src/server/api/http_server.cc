#include "server/api/http_server.h"

#include <openssl/ssl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <deque>
#include <exception>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

// GCC 12 misreads Asio's custom coroutine frame allocator as a new/delete mismatch
// (GCC bug 100485); the frames are allocated and freed by the same awaitable_frame_base.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include "common/logging.h"

namespace quell::server::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// After answering with "Connection: close" the server keeps reading (and discarding) for at
// most this long, so that a client still sending an oversize body receives the 413 instead
// of a connection reset.
constexpr std::chrono::seconds kLingerTimeout{5};

// WebSocket timeouts, independent of ServerOptions::idle_timeout (a live session may be quiet
// for minutes): the opening and closing handshakes must finish within kWebSocketHandshake;
// a peer silent for kWebSocketIdle/2 is pinged and dropped when nothing at all (not even the
// pong) arrives within kWebSocketIdle.
constexpr std::chrono::seconds kWebSocketHandshake{30};
constexpr std::chrono::seconds kWebSocketIdle{60};
// RFC 6455 5.5: a control frame payload is at most 125 bytes, 2 of them the close code.
constexpr size_t kMaxCloseReason = 123;

Status LoadCertificate(asio::ssl::context& tls, const ServerOptions& options) {
  boost::system::error_code ec;
  tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1,
                  ec);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  tls.use_certificate_chain(asio::buffer(options.cert_pem), ec);
  if (ec) return InvalidArgument("server certificate: " + ec.message());
  tls.use_private_key(asio::buffer(options.key_pem), asio::ssl::context::pem, ec);
  if (ec) return InvalidArgument("server private key: " + ec.message());
  if (SSL_CTX_check_private_key(tls.native_handle()) != 1) {
    return InvalidArgument("server private key does not match the certificate");
  }
  return Status::Ok();
}

// Malformed input as opposed to a connection that ended or failed underneath the parser.
bool IsMalformedRequest(const boost::system::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
         ec != bhttp::error::short_read;
}

// Copies the request line and headers; the body is left to the caller.
Request ToRequest(const bhttp::request<bhttp::string_body>& message, const std::string& remote) {
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  for (const auto& field : message) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto [it, inserted] = request.headers.emplace(std::move(name), std::string(field.value()));
    if (!inserted) it->second.append(", ").append(field.value().data(), field.value().size());
  }
  request.remote_address = remote;
  return request;
}

bool HasLineBreak(std::string_view text) { return text.find_first_of("\r\n") != text.npos; }

// Checks `response` (an invalid one becomes a 500) and copies its status and headers into
// `message`. False when the response must carry no body (204, 304).
template <class Body>
bool SetHead(Response& response, bhttp::response<Body>& message, unsigned version,
             bool keep_alive, spdlog::logger& log) {
  if (response.status < 200 || response.status > 599 ||
      HasLineBreak(response.content_type)) {
    log.error("handler returned an invalid response (status {}); answering 500",
              response.status);
    response = Response::Error(500, "Internal", "internal error");
  }
  message.result(static_cast<bhttp::status>(response.status));
  message.version(version);
  for (auto& [name, value] : response.headers) {
    if (name.empty() || HasLineBreak(name) || HasLineBreak(value)) {
      log.error("dropping response header with an empty name or a line break");
      continue;
    }
    message.insert(name, value);
  }
  message.keep_alive(keep_alive);
  if (response.status == 204 || response.status == 304) return false;  // no body allowed
  message.set(bhttp::field::content_type, response.content_type);
  return true;
}

bhttp::response<bhttp::string_body> ToMessage(Response response, unsigned version,
                                              bool keep_alive, spdlog::logger& log) {
  bhttp::response<bhttp::string_body> message;
  if (!SetHead(response, message, version, keep_alive, log)) return message;
  message.content_length(response.body.size());
  message.body() = std::move(response.body);
  return message;
}

// `text` cut to at most `max` bytes without splitting a UTF-8 sequence (a close reason must
// be valid UTF-8 or the peer fails the connection).
std::string TruncateUtf8(std::string text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text;
}

// The UpgradeHandler's answer; an exception becomes a 500 refusal.
UpgradeDecision DecideUpgrade(const WebSocketRoute& route, Request& request,
                              spdlog::logger& log) {
  try {
    return route.handler(request);
  } catch (const std::exception& e) {
    log.error("upgrade handler for {} threw: {}", route.pattern, e.what());
  } catch (...) {
    log.error("upgrade handler for {} threw a non-std exception", route.pattern);
  }
  return {nullptr, Response::Error(500, "Internal", "internal error")};
}

class WebSocketSession;

// What the application holds (WebSocketConnection). It never owns the session: once the
// session has ended (Detach) every call is a no-op, so the handler may keep it past the
// connection and past the server. The mutex orders calls against Detach, which happens before
// the io_context goes away, so a post never targets a destroyed io_context.
class WebSocketPeer final : public WebSocketConnection {
 public:
  explicit WebSocketPeer(std::weak_ptr<WebSocketSession> session)
      : session_(std::move(session)) {}

  void SendText(std::string text) override;
  void Close(std::string reason) override;

  // Ends the peer: later calls do nothing. Called by the session when it ends.
  void Detach() {
    std::lock_guard lock(mutex_);
    session_.reset();
    closing_ = true;
  }

 private:
  std::mutex mutex_;
  std::weak_ptr<WebSocketSession> session_;
  bool closing_ = false;  // Close() was called or the session ended: SendText drops
};

// One open WebSocket. Everything but Finish() from Stop() runs on the connection's strand:
// the read loop (Run), the writes, the handler's callbacks.
class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(TlsStream stream, std::shared_ptr<WebSocketHandler> handler,
                   const WebSocketOptions& options, std::string path, std::string remote,
                   std::shared_ptr<spdlog::logger> log)
      : ws_(std::move(stream)),
        handler_(std::move(handler)),
        options_(options),
        path_(std::move(path)),
        remote_(std::move(remote)),
        log_(std::move(log)) {}

  // Completes the handshake for `upgrade`, then reads messages until the connection ends.
  // Ends with Finish().
  asio::awaitable<void> Run(bhttp::request<bhttp::string_body> upgrade) {
    auto self = shared_from_this();
    peer_ = std::make_shared<WebSocketPeer>(weak_from_this());
    boost::system::error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    // The websocket stream runs its own timers; the HTTP per-operation deadline would cut a
    // quiet but healthy connection.
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeout;
    timeout.handshake_timeout = kWebSocketHandshake;
    timeout.idle_timeout = kWebSocketIdle;
    timeout.keep_alive_pings = true;
    ws_.set_option(timeout);
    ws_.read_message_max(options_.max_message_bytes);
    co_await ws_.async_accept(upgrade, token);
    if (ec) {
      log_->debug("websocket {} handshake with {} failed: {}", path_, remote_, ec.message());
      Finish();
      co_return;
    }
    opened_ = Clock::now();
    log_->debug("websocket {} opened remote={}", path_, remote_);
    Callback("OnOpen", [&] { handler_->OnOpen(peer_); });

    beast::flat_buffer buffer;
    while (!finished_) {
      co_await ws_.async_read(buffer, token);
      if (ec) break;
      if (!ws_.got_text()) {
        // Keep reading: the loop ends when the close handshake completes.
        RequestClose(websocket::close_code::unknown_data, "binary messages are not supported");
      } else if (!close_) {
        std::string text = beast::buffers_to_string(buffer.data());
        Callback("OnText", [&] { handler_->OnText(text); });
      }
      buffer.consume(buffer.size());
    }
    const auto lasted = Clock::now() - opened_;
    log_->debug("websocket {} closed after {}ms remote={}: {}", path_,
                std::chrono::duration_cast<std::chrono::milliseconds>(lasted).count(), remote_,
                ec == websocket::error::closed ? "closed" : ec.message());
    Finish();
  }

  // Ends the session for the application: detaches the peer, calls OnClose, drops queued
  // frames. Idempotent. On the strand, or from Stop() once no IO thread runs.
  void Finish() {
    if (finished_) return;
    finished_ = true;
    if (peer_ != nullptr) peer_->Detach();
    // A frame being written stays until its write completes (Beast holds its buffer).
    if (queue_.size() > 1 || !writing_) {
      queue_.erase(writing_ ? std::next(queue_.begin()) : queue_.begin(), queue_.end());
    }
    Callback("OnClose", [&] { handler_->OnClose(); });
    handler_.reset();  // the application's state goes now, not when the last write completes
  }

  asio::any_io_executor executor() { return ws_.get_executor(); }

  // On the strand: queue one text frame.
  void Send(std::string text) {
    if (finished_ || close_) return;
    queue_.push_back(std::move(text));
    WriteNext();
  }

  // On the strand: send what is queued, then a close frame with `code` and `reason`.
  void RequestClose(websocket::close_code code, std::string reason) {
    if (finished_ || close_) return;
    close_ = websocket::close_reason(code);
    close_->reason = TruncateUtf8(std::move(reason), kMaxCloseReason);
    WriteNext();
  }

 private:
  // Runs a handler callback; an exception is logged and closes the connection with 1011.
  template <class F>
  void Callback(const char* name, F&& call) {
    if (handler_ == nullptr) return;
    try {
      call();
      return;
    } catch (const std::exception& e) {
      log_->error("websocket handler {} for {} threw: {}", name, path_, e.what());
    } catch (...) {
      log_->error("websocket handler {} for {} threw a non-std exception", name, path_);
    }
    RequestClose(websocket::close_code::internal_error, "internal error");
  }

  // One write at a time: the front of the queue, then, with the queue empty, the close frame.
  void WriteNext() {
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      writing_ = true;
      ws_.text(true);
      ws_.async_write(asio::buffer(queue_.front()),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        self->writing_ = false;
                        if (!self->queue_.empty()) self->queue_.pop_front();
                        if (ec) {
                          self->queue_.clear();  // the read loop sees the failure and ends
                          return;
                        }
                        self->WriteNext();
                      });
      return;
    }
    if (close_ && !close_sent_) {
      close_sent_ = true;
      writing_ = true;
      ws_.async_close(*close_, [self = shared_from_this()](boost::system::error_code) {
        self->writing_ = false;
      });
    }
  }

  websocket::stream<TlsStream> ws_;
  std::shared_ptr<WebSocketHandler> handler_;
  std::shared_ptr<WebSocketPeer> peer_;
  const WebSocketOptions options_;
  const std::string path_, remote_;
  const std::shared_ptr<spdlog::logger> log_;
  Clock::time_point opened_ = Clock::now();
  std::deque<std::string> queue_;
  std::optional<websocket::close_reason> close_;  // requested; sent once the queue is empty
  bool writing_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
};

void WebSocketPeer::SendText(std::string text) {
  std::lock_guard lock(mutex_);
  if (closing_) return;
  std::shared_ptr<WebSocketSession> session = session_.lock();
  if (session == nullptr) return;
  asio::any_io_executor executor = session->executor();
  asio::post(executor, [session = std::move(session), text = std::move(text)]() mutable {
    session->Send(std::move(text));
  });
}

void WebSocketPeer::Close(std::string reason) {
  std::lock_guard lock(mutex_);
  if (closing_) return;
  closing_ = true;
  std::shared_ptr<WebSocketSession> session = session_.lock();
  if (session == nullptr) return;
  asio::any_io_executor executor = session->executor();
  asio::post(executor, [session = std::move(session), reason = std::move(reason)]() mutable {
    session->RequestClose(websocket::close_code::normal, std::move(reason));
  });
}

}  // namespace

struct HttpsServer::Impl {
  Impl(ServerOptions options, const Router& router)
      : options(std::move(options)), router(router) {}

  asio::awaitable<void> Accept();
  asio::awaitable<void> Serve(tcp::socket socket);
  asio::awaitable<void> Linger(TlsStream& stream);
  // Runs an accepted WebSocket on `stream` until it ends; registered for Stop() meanwhile.
  asio::awaitable<void> RunWebSocket(TlsStream stream, bhttp::request<bhttp::string_body> upgrade,
                                     std::shared_ptr<WebSocketHandler> handler,
                                     const WebSocketOptions& options, std::string path,
                                     std::string remote);

  const ServerOptions options;
  const Router& router;
  const std::shared_ptr<spdlog::logger> log = Logger("server.http");
  // Set by Start(), reset by Stop(); IO threads only touch them in between.
  std::unique_ptr<asio::io_context> io;
  std::unique_ptr<asio::ssl::context> tls;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  // Open WebSockets, so that Stop() can end them (OnClose) before their coroutines vanish.
  std::mutex websockets_mutex;
  std::map<WebSocketSession*, std::weak_ptr<WebSocketSession>> websockets;
};

asio::awaitable<void> HttpsServer::Impl::Accept() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket(asio::make_strand(*io));
    co_await acceptor->async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Typically EMFILE: pause instead of spinning until descriptors free up.
      log->warn("accept failed: {}", ec.message());
      asio::steady_timer pause(acceptor->get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    // Small responses and WebSocket frames must not wait for Nagle (40 ms with delayed ACKs).
    socket.set_option(tcp::no_delay(true), ec);
    auto executor = socket.get_executor();
    asio::co_spawn(executor, Serve(std::move(socket)), [log = log](std::exception_ptr error) {
      // Only a bug or bad_alloc gets here; the connection is dropped, the server goes on.
      if (!error) return;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        log->error("connection failed with an exception: {}", e.what());
      } catch (...) {
        log->error("connection failed with a non-std exception");
      }
    });
  }
}

asio::awaitable<void> HttpsServer::Impl::Serve(tcp::socket socket) {
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  const std::string remote = socket.remote_endpoint(ec).address().to_string();
  TlsStream stream(std::move(socket), *tls);
  beast::tcp_stream& transport = beast::get_lowest_layer(stream);

  transport.expires_after(options.idle_timeout);
  co_await stream.async_handshake(asio::ssl::stream_base::server, token);
  if (ec) {
    log->debug("TLS handshake with {} failed: {}", remote, ec.message());
    co_return;
  }

  beast::flat_buffer buffer;
  for (bool keep_alive = true; keep_alive;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    // The body limit depends on the route, known only once the request line is in: read the
    // header without one (Beast would otherwise refuse a Content-Length over the default
    // while still parsing the header), then apply the route's limit before the body. Not
    // boost::none: Boost 1.74 compares a length against an empty limit as "over" it.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    size_t body_limit = options.max_body_bytes;
    transport.expires_after(options.idle_timeout);
    co_await bhttp::async_read_header(stream, buffer, parser, token);

    Response response;
    std::string method = "-", path = "-";
    unsigned version = 11;  // what a request that did not parse is answered with
    bool answered = false;  // `response` holds an UpgradeHandler's refusal
    // An upgrade request has no body, so it is complete with the header.
    if (!ec && parser.is_done() && websocket::is_upgrade(parser.get())) {
      Request request = ToRequest(parser.get(), remote);
      if (const WebSocketRoute* route = router.MatchWebSocket(request)) {
        UpgradeDecision decision = DecideUpgrade(*route, request, *log);
        if (decision.handler != nullptr) {
          co_await RunWebSocket(std::move(stream), parser.release(), std::move(decision.handler),
                                route->options, std::move(request.path), remote);
          co_return;
        }
        answered = true;
        response = std::move(decision.refusal);
        keep_alive = parser.get().keep_alive();
        version = parser.get().version();
        method = std::move(request.method);
        path = std::move(request.path);
      }
    }
    if (!ec && !answered) {
      const auto& header = parser.get();
      const auto method = header.method_string();
      const auto target = header.target();
      body_limit = router.BodyLimit(std::string_view(method.data(), method.size()),
                                    std::string_view(target.data(), target.size()),
                                    options.max_body_bytes);
      // Beast checks Content-Length against the limit only while parsing the header, so a
      // declared length is checked here; the limit itself still bounds chunked bodies.
      if (auto length = parser.content_length(); length && *length > body_limit) {
        ec = bhttp::error::body_limit;
      } else {
        parser.body_limit(body_limit);
        transport.expires_after(options.idle_timeout);
        co_await bhttp::async_read(stream, buffer, parser, token);
      }
    }
    const auto started = Clock::now();

    if (answered) {
      // The refusal is answered below like any response.
    } else if (!ec) {
      keep_alive = parser.get().keep_alive();
      version = parser.get().version();
      Request request = ToRequest(parser.get(), remote);
      request.body = std::move(parser.get().body());
      response = router.Dispatch(request);
      method = std::move(request.method);
      if (!request.path.empty()) path = std::move(request.path);
    } else if (ec == bhttp::error::body_limit) {
      keep_alive = false;
      response = Response::Error(413, "PayloadTooLarge",
                                 fmt::format("request body exceeds {} bytes", body_limit));
    } else if (ec == bhttp::error::header_limit) {
      keep_alive = false;
      response = Response::Error(431, "RequestHeaderFieldsTooLarge",
                                 fmt::format("request headers exceed {} bytes",
                                             options.max_header_bytes));
    } else if (IsMalformedRequest(ec)) {
      keep_alive = false;
      response = Response::Error(400, "BadRequest", "malformed HTTP request: " + ec.message());
    } else {
      // Closed, reset, timed out or a TLS failure: there is nobody to answer.
      log->debug("connection from {} ended: {}", remote, ec.message());
      co_return;
    }

    if (!response.file_path.empty()) {
      bhttp::response<bhttp::file_body> file_message;
      file_message.body().open(response.file_path.c_str(), beast::file_mode::scan, ec);
      if (response.remove_file_when_open) ::unlink(response.file_path.c_str());
      if (!ec) {
        SetHead(response, file_message, version, keep_alive, *log);
        file_message.prepare_payload();
        log->debug("{} {} {} file {} bytes remote={}", method, path, file_message.result_int(),
                   file_message.body().size(), remote);
        // Piece by piece, each under the idle timeout: a large download is not a stall.
        bhttp::response_serializer<bhttp::file_body> serializer(file_message);
        while (!serializer.is_done()) {
          transport.expires_after(options.idle_timeout);
          co_await bhttp::async_write_some(stream, serializer, token);
          if (ec) co_return;
        }
        continue;
      }
      log->error("cannot open {} to send it: {}", response.file_path, ec.message());
      ec = {};
      response = Response::Error(500, "Internal", "internal error");
    }

    // Logged before the write so that a line is never lost to a stop or a vanished client;
    // the duration is the server's own time to answer.
    auto message = ToMessage(std::move(response), version, keep_alive, *log);
    log->debug("{} {} {} {}us remote={}", method, path, message.result_int(),
               std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started)
                   .count(),
               remote);
    transport.expires_after(options.idle_timeout);
    co_await bhttp::async_write(stream, message, token);
    if (ec) co_return;
  }
  co_await Linger(stream);
}

asio::awaitable<void> HttpsServer::Impl::Linger(TlsStream& stream) {
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  beast::tcp_stream& transport = beast::get_lowest_layer(stream);
  transport.expires_after(std::min<Clock::duration>(kLingerTimeout, options.idle_timeout));
  co_await stream.async_shutdown(token);  // send close_notify, await the client's
  if (!ec) co_return;
  // The client is still sending (or closed without close_notify): stop sending and drain
  // whatever arrives until it closes or the deadline passes.
  transport.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 16 << 10> scratch;
  while (!ec) co_await transport.async_read_some(asio::buffer(scratch), token);
}

asio::awaitable<void> HttpsServer::Impl::RunWebSocket(
    TlsStream stream, bhttp::request<bhttp::string_body> upgrade,
    std::shared_ptr<WebSocketHandler> handler, const WebSocketOptions& options,
    std::string path, std::string remote) {
  auto session = std::make_shared<WebSocketSession>(std::move(stream), std::move(handler),
                                                    options, std::move(path),
                                                    std::move(remote), log);
  {
    std::lock_guard lock(websockets_mutex);
    websockets.emplace(session.get(), session);
  }
  co_await session->Run(std::move(upgrade));
  std::lock_guard lock(websockets_mutex);
  websockets.erase(session.get());
}

HttpsServer::HttpsServer(ServerOptions options, const Router& router)
    : impl_(std::make_unique<Impl>(std::move(options), router)) {}

HttpsServer::~HttpsServer() { Stop(); }

Status HttpsServer::Start() {
  Impl& s = *impl_;
  if (s.io) return FailedPrecondition("HTTPS server already started");
  if (s.options.threads < 1) return InvalidArgument("HTTPS server needs at least one thread");

  auto io = std::make_unique<asio::io_context>(s.options.threads);
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  QUELL_RETURN_IF_ERROR(LoadCertificate(*tls, s.options));

  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(s.options.address, ec);
  if (ec) return InvalidArgument("bad listen address '" + s.options.address + "'");
  const tcp::endpoint endpoint(address, s.options.port);
  const std::string where = fmt::format("{}:{}", s.options.address, s.options.port);
  auto acceptor = std::make_unique<tcp::acceptor>(*io);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + where + ": " + ec.message());

  s.port = acceptor->local_endpoint().port();
  s.io = std::move(io);
  s.tls = std::move(tls);
  s.acceptor = std::move(acceptor);
  asio::co_spawn(*s.io, s.Accept(), asio::detached);
  for (int i = 0; i < s.options.threads; ++i) {
    s.threads.emplace_back([&s] {
      auto work = asio::make_work_guard(*s.io);
      s.io->run();
    });
  }
  s.log->info("listening on https://{}:{}", s.options.address, s.port);
  return Status::Ok();
}

uint16_t HttpsServer::port() const { return impl_->port; }

void HttpsServer::Stop() {
  Impl& s = *impl_;
  if (!s.io) return;
  s.io->stop();
  for (std::thread& thread : s.threads) thread.join();
  s.threads.clear();
  // Open WebSockets end here, on this thread (no IO thread runs any more): the application
  // hears OnClose and its connections go inert before the io_context, which they post to,
  // is destroyed.
  std::vector<std::shared_ptr<WebSocketSession>> websockets;
  {
    std::lock_guard lock(s.websockets_mutex);
    for (auto& [raw, weak] : s.websockets) {
      if (auto session = weak.lock()) websockets.push_back(std::move(session));
    }
    s.websockets.clear();
  }
  for (const auto& session : websockets) session->Finish();
  websockets.clear();
  // With the threads gone nothing runs concurrently. Destroying the io_context destroys the
  // suspended connection coroutines, and with them their sockets.
  boost::system::error_code ignored;
  s.acceptor->close(ignored);
  s.acceptor.reset();
  s.io.reset();
  s.tls.reset();
  s.port = 0;
  s.log->info("stopped");
}

}  // namespace quell::server::http
