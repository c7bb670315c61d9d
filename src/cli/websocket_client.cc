#include "cli/websocket_client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>

#include "common/unique_fd.h"

// GCC 12 misreads Asio's coroutine frame allocator as a new/delete mismatch (GCC bug
// 100485), as in api_client.cc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace quell::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

std::string RefusalMessage(const WebSocketRefusal& refusal) {
  const std::string http = "(HTTP " + std::to_string(refusal.http_status) + ")";
  nlohmann::json body = nlohmann::json::parse(refusal.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const nlohmann::json& error = body["error"];
    std::string code = error.contains("code") && error["code"].is_string() ? error["code"].get<std::string>() : "";
    std::string message =
        error.contains("message") && error["message"].is_string() ? error["message"].get<std::string>() : "";
    if (!code.empty() && !message.empty()) return code + ": " + message + " " + http;
    if (!code.empty() || !message.empty()) return code + message + " " + http;
  }
  std::string text = refusal.body.substr(0, 200);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.empty() ? "the server refused the connection " + http
                      : "the server refused the connection " + http + ": " + text;
}

struct WebSocketClient::Impl {
  explicit Impl(const ApiClientOptions& o) : options(o) {}

  // Connect phase (runs on the caller's thread before the network thread exists).
  asio::awaitable<Status> Open(const ApiUrl& url, std::string target, WebSocketRefusal* refusal);

  // Network thread only.
  void StartRead();
  void Enqueue(std::string text);
  void StartWrite();
  void RequestClose();

  // Any thread.
  void Push(WebSocketEvent event);

  ApiClientOptions options;
  asio::io_context io;
  asio::ssl::context tls{asio::ssl::context::tls_client};
  std::optional<websocket::stream<beast::ssl_stream<beast::tcp_stream>>> ws;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;

  // Owned by the network thread.
  beast::flat_buffer read_buffer;
  std::deque<std::string> outbox;
  bool writing = false;
  bool close_requested = false;
  bool close_sent = false;
  bool ended = false;

  // Shared with the caller.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<WebSocketEvent> events;
  UniqueFd event_fd;
};

namespace {

bool IsIpAddress(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

asio::awaitable<Status> WebSocketClient::Impl::Open(const ApiUrl& url, std::string target,
                                                    WebSocketRefusal* refusal) {
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  const bool ipv6 = url.host.find(':') != std::string::npos;
  const std::string where =
      (ipv6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
  auto step_error = [&](const std::string& step) {
    if (ec == beast::error::timeout) {
      return DeadlineExceeded(step + " " + where + ": timed out after " +
                              std::to_string(options.timeout.count()) + "s");
    }
    return Unavailable(step + " " + where + ": " + ec.message());
  };

  tcp::resolver resolver(io);
  auto endpoints = co_await resolver.async_resolve(url.host, std::to_string(url.port), token);
  if (ec) co_return Unavailable("cannot resolve " + url.host + ": " + ec.message());

  ws.emplace(io, tls);
  auto& stream = ws->next_layer();
  SSL* ssl = stream.native_handle();
  const bool is_ip = IsIpAddress(url.host);
  if (!is_ip) SSL_set_tlsext_host_name(ssl, url.host.c_str());
  if (!options.insecure) {
    int set = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str())
                    : SSL_set1_host(ssl, url.host.c_str());
    if (set != 1) co_return Internal("cannot set the expected TLS peer name");
  }
  beast::tcp_stream& transport = beast::get_lowest_layer(*ws);
  transport.expires_after(options.timeout);
  co_await transport.async_connect(endpoints, token);
  if (ec) co_return step_error("cannot connect to");
  // One small frame per command: without this, Nagle holds it until the last one is acked.
  transport.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  co_await stream.async_handshake(asio::ssl::stream_base::client, token);
  if (ec) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      co_return Unauthenticated(std::string("TLS certificate verification failed: ") +
                                X509_verify_cert_error_string(verify) + " (server " + where + ")");
    }
    co_return step_error("TLS handshake failed with");
  }

  // Beast's WebSocket timeouts replace the stream's: a ping after 30 s of silence, the
  // connection given up after 60 s without an answer.
  transport.expires_never();
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = options.timeout;
  timeouts.idle_timeout = std::chrono::seconds(60);
  timeouts.keep_alive_pings = true;
  ws->set_option(timeouts);
  const std::string bearer = options.token.empty() ? "" : "Bearer " + options.token;
  ws->set_option(websocket::stream_base::decorator([bearer](websocket::request_type& request) {
    request.set(beast::http::field::user_agent, "quell-cli/" QUELL_VERSION);
    if (!bearer.empty()) request.set(beast::http::field::authorization, bearer);
  }));
  ws->read_message_max(16 << 20);

  websocket::response_type response;
  co_await ws->async_handshake(response, where, url.base_path + target, token);
  if (ec == websocket::error::upgrade_declined ||
      (ec && response.result_int() != 0 && response.result_int() != 101)) {
    WebSocketRefusal r{static_cast<int>(response.result_int()), response.body()};
    if (refusal != nullptr) *refusal = r;
    co_return FailedPrecondition(RefusalMessage(r));
  }
  if (ec) co_return step_error("WebSocket handshake failed with");
  ws->text(true);
  co_return Status::Ok();
}

void WebSocketClient::Impl::Push(WebSocketEvent event) {
  std::lock_guard lock(mu);
  events.push_back(std::move(event));
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(event_fd.get(), &one, sizeof one);
  cv.notify_all();
}

void WebSocketClient::Impl::StartRead() {
  ws->async_read(read_buffer, [this](boost::system::error_code ec, size_t) {
    if (ec) {
      ended = true;
      outbox.clear();
      if (ec == websocket::error::closed) {
        Push({WebSocketEvent::Kind::kClosed, std::string(ws->reason().reason.c_str())});
      } else {
        Push({WebSocketEvent::Kind::kError, "connection lost: " + ec.message()});
      }
      return;
    }
    Push({WebSocketEvent::Kind::kText, beast::buffers_to_string(read_buffer.data())});
    read_buffer.consume(read_buffer.size());
    StartRead();
  });
}

void WebSocketClient::Impl::Enqueue(std::string text) {
  if (ended || close_requested) return;
  outbox.push_back(std::move(text));
  if (!writing) StartWrite();
}

void WebSocketClient::Impl::StartWrite() {
  if (ended) {
    writing = false;
    return;
  }
  if (outbox.empty()) {
    writing = false;
    if (close_requested && !close_sent) {
      close_sent = true;
      ws->async_close(websocket::close_code::normal, [](boost::system::error_code) {});
    }
    return;
  }
  writing = true;
  ws->async_write(asio::buffer(outbox.front()), [this](boost::system::error_code ec, size_t) {
    if (ec) {
      writing = false;
      outbox.clear();
      return;  // the read side reports the failure
    }
    if (!outbox.empty()) outbox.pop_front();
    StartWrite();
  });
}

void WebSocketClient::Impl::RequestClose() {
  if (ended || close_requested) return;
  close_requested = true;
  if (!writing) StartWrite();
}

namespace {

asio::awaitable<void> RunOpen(WebSocketClient::Impl& impl, const ApiUrl& url,
                              const std::string& target, WebSocketRefusal* refusal,
                              Status& out) {
  out = co_await impl.Open(url, target, refusal);
}

}  // namespace

Result<std::unique_ptr<WebSocketClient>> WebSocketClient::Connect(const ApiClientOptions& options,
                                                                  const std::string& target,
                                                                  WebSocketRefusal* refusal) {
  QUELL_ASSIGN_OR_RETURN(ApiUrl url, ParseApiUrl(options.base_url));
  if (target.empty() || target.front() != '/' ||
      target.find_first_of(" \t\r\n#") != target.npos) {
    return InvalidArgument("request target must start with '/' and contain no spaces: '" +
                           target + "'");
  }
  auto impl = std::make_unique<Impl>(options);
  impl->event_fd.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!impl->event_fd) return ErrnoStatus("eventfd");
  SSL_CTX_set_min_proto_version(impl->tls.native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (options.insecure) {
    impl->tls.set_verify_mode(asio::ssl::verify_none);
  } else {
    impl->tls.set_verify_mode(asio::ssl::verify_peer);
    if (options.ca_file.empty()) {
      impl->tls.set_default_verify_paths(ec);
    } else {
      impl->tls.load_verify_file(options.ca_file, ec);
    }
    if (ec) {
      return InvalidArgument("cannot load CA certificates" +
                             (options.ca_file.empty() ? "" : " from " + options.ca_file) + ": " +
                             ec.message());
    }
  }

  Status opened = Internal("connection did not complete");
  asio::co_spawn(impl->io, RunOpen(*impl, url, target, refusal, opened),
                 [&opened, raw = impl.get()](std::exception_ptr error) {
                   // WebSocket timers may still be pending; they must not hold up Connect.
                   raw->io.stop();
                   if (!error) return;
                   try {
                     std::rethrow_exception(error);
                   } catch (const std::exception& e) {
                     opened = Internal(std::string("WebSocket connection failed: ") + e.what());
                   } catch (...) {
                     opened = Internal("WebSocket connection failed");
                   }
                 });
  impl->io.run();
  if (!opened.ok()) return opened;

  impl->io.restart();
  impl->work.emplace(impl->io.get_executor());
  Impl* raw = impl.get();
  asio::post(impl->io, [raw] { raw->StartRead(); });
  impl->thread = std::thread([raw] {
    try {
      raw->io.run();
    } catch (const std::exception& e) {
      raw->Push({WebSocketEvent::Kind::kError, std::string("network thread failed: ") + e.what()});
    }
  });
  return std::unique_ptr<WebSocketClient>(new WebSocketClient(std::move(impl)));
}

WebSocketClient::WebSocketClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebSocketClient::~WebSocketClient() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void WebSocketClient::Send(std::string text) {
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl, text = std::move(text)]() mutable { impl->Enqueue(std::move(text)); });
}

void WebSocketClient::Close() {
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] { impl->RequestClose(); });
}

int WebSocketClient::notify_fd() const { return impl_->event_fd.get(); }

std::optional<WebSocketEvent> WebSocketClient::TryPop() {
  std::lock_guard lock(impl_->mu);
  if (impl_->events.empty()) {
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(impl_->event_fd.get(), &count, sizeof count);
    return std::nullopt;
  }
  WebSocketEvent event = std::move(impl_->events.front());
  impl_->events.pop_front();
  if (impl_->events.empty()) {
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(impl_->event_fd.get(), &count, sizeof count);
  }
  return event;
}

std::optional<WebSocketEvent> WebSocketClient::WaitPop(std::chrono::milliseconds timeout) {
  {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait_for(lock, timeout, [this] { return !impl_->events.empty(); });
  }
  return TryPop();
}

}  // namespace quell::cli
