// WebSocket routes end to end: a Beast WebSocket client over TLS against HttpsServer.
#include "server/api/websocket.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>


#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "common/testing/log_capture.h"
#include "common/testing/test_pki.h"
#include "server/api/http_server.h"
#include "server/api/router.h"

namespace quell::server::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Every client operation is bounded, so a broken server fails a test instead of hanging it.
constexpr auto kClientTimeout = 5s;

// A Beast WebSocket client over TLS; each call runs one asynchronous operation to completion
// (or kClientTimeout, then the socket is closed and the call fails).
class WsClient {
 public:
  WsClient(uint16_t port, const std::string& ca_pem) {
    tls_.add_certificate_authority(asio::buffer(ca_pem));
    tls_.set_verify_mode(asio::ssl::verify_peer);
    beast::get_lowest_layer(ws_).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    ws_.next_layer().handshake(asio::ssl::stream_base::client);
    ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
      request.set(bhttp::field::authorization, "Bearer t0ken");
    }));
  }

  beast::error_code Handshake(const std::string& target,
                              websocket::response_type* response = nullptr) {
    websocket::response_type ignored;
    return Await([&](auto handler) {
      ws_.async_handshake(response != nullptr ? *response : ignored, "127.0.0.1", target,
                          std::move(handler));
    });
  }

  beast::error_code Write(const std::string& text, bool binary = false) {
    ws_.binary(binary);
    return Await([&](auto handler) { ws_.async_write(asio::buffer(text), std::move(handler)); });
  }

  beast::error_code Read(std::string& text) {
    beast::flat_buffer buffer;
    beast::error_code ec =
        Await([&](auto handler) { ws_.async_read(buffer, std::move(handler)); });
    text = beast::buffers_to_string(buffer.data());
    return ec;
  }

  std::string ReadText() {
    std::string text;
    beast::error_code ec = Read(text);
    EXPECT_FALSE(ec) << ec.message();
    return text;
  }

  // A plain HTTP request on the TLS stream, before any WebSocket handshake.
  bhttp::response<bhttp::string_body> Http(bhttp::verb method, const std::string& target) {
    bhttp::request<bhttp::empty_body> request{method, target, 11};
    request.set(bhttp::field::host, "127.0.0.1");
    bhttp::response<bhttp::string_body> response;
    beast::error_code ec = Await([&](auto handler) {
      bhttp::async_write(ws_.next_layer(), request, std::move(handler));
    });
    EXPECT_FALSE(ec) << ec.message();
    ec = Await([&](auto handler) {
      bhttp::async_read(ws_.next_layer(), buffer_, response, std::move(handler));
    });
    EXPECT_FALSE(ec) << ec.message();
    return response;
  }

  // The close frame the server sent (valid after a read failed with websocket::error::closed).
  websocket::close_reason reason() const { return ws_.reason(); }

  // Drops the TCP connection without a close frame.
  void Drop() { beast::get_lowest_layer(ws_).close(); }

 private:
  template <class Start>
  beast::error_code Await(Start start) {
    std::optional<beast::error_code> result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run_for(kClientTimeout);
    if (!result) {
      beast::get_lowest_layer(ws_).close();
      io_.restart();
      io_.run();
      ADD_FAILURE() << "client operation timed out";
      return asio::error::timed_out;
    }
    return *result;
  }

  asio::io_context io_;
  asio::ssl::context tls_{asio::ssl::context::tls_client};
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws_{io_, tls_};
  beast::flat_buffer buffer_;
};

// Records the callbacks in order; optionally echoes every text back.
class RecordingHandler : public WebSocketHandler {
 public:
  explicit RecordingHandler(bool echo) : echo_(echo) {}

  void OnOpen(std::shared_ptr<WebSocketConnection> connection) override {
    std::lock_guard lock(mutex_);
    connection_ = std::move(connection);
    events_.push_back("open");
    changed_.notify_all();
  }
  void OnText(const std::string& text) override {
    std::lock_guard lock(mutex_);
    events_.push_back("text:" + text);
    if (echo_) connection_->SendText("echo:" + text);
    changed_.notify_all();
  }
  void OnClose() override {
    std::lock_guard lock(mutex_);
    events_.push_back("close");
    changed_.notify_all();
  }

  // Waits until `event` was recorded; false after 5 s.
  bool WaitFor(const std::string& event) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 5s, [&] {
      return std::find(events_.begin(), events_.end(), event) != events_.end();
    });
  }

  std::vector<std::string> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::shared_ptr<WebSocketConnection> connection() {
    std::lock_guard lock(mutex_);
    return connection_;
  }
  int Count(const std::string& event) {
    auto all = events();
    return static_cast<int>(std::count(all.begin(), all.end(), event));
  }

 private:
  const bool echo_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> events_;
  std::shared_ptr<WebSocketConnection> connection_;
};

class WebSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = testing::MakeTestPki();
    router_.Add("GET", "/api/ping", [](Request&) { return Response::Json(200, {{"pong", true}}); });
    // Echo; what the upgrade handler saw is kept for the test.
    router_.AddWebSocket(
        "/api/machines/{id}/liveresponse",
        [this](Request& request) {
          std::lock_guard lock(mutex_);
          seen_ = request;
          auto handler = std::make_shared<RecordingHandler>(true);
          handlers_.push_back(handler);
          return UpgradeDecision{handler, {}};
        },
        {.max_message_bytes = 1024});
    // Server-driven: records, never echoes.
    router_.AddWebSocket("/api/push", [this](Request&) {
      std::lock_guard lock(mutex_);
      auto handler = std::make_shared<RecordingHandler>(false);
      handlers_.push_back(handler);
      return UpgradeDecision{handler, {}};
    });
    router_.AddWebSocket("/api/forbidden", [this](Request&) {
      std::lock_guard lock(mutex_);
      ++refused_;
      return UpgradeDecision{nullptr, Response::Error(403, "Forbidden", "responder role needed")};
    });
  }

  void StartServer(ServerOptions options = {}) {
    options.cert_pem = pki_.server.cert_pem;
    options.key_pem = pki_.server.key_pem;
    server_ = std::make_unique<HttpsServer>(options, router_);
    Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }

  std::unique_ptr<WsClient> Connect() {
    return std::make_unique<WsClient>(server_->port(), pki_.ca.cert_pem);
  }

  // A client with an open WebSocket to `target` and the server handler serving it.
  std::pair<std::unique_ptr<WsClient>, std::shared_ptr<RecordingHandler>> Open(
      const std::string& target) {
    auto client = Connect();
    beast::error_code ec = client->Handshake(target);
    EXPECT_FALSE(ec) << ec.message();
    std::shared_ptr<RecordingHandler> handler;
    {
      std::lock_guard lock(mutex_);
      if (!handlers_.empty()) handler = handlers_.back();
    }
    EXPECT_NE(handler, nullptr);
    if (handler == nullptr) handler = std::make_shared<RecordingHandler>(false);
    EXPECT_TRUE(handler->WaitFor("open"));
    return {std::move(client), handler};
  }

  testing::TestPki pki_;
  Router router_;
  std::unique_ptr<HttpsServer> server_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<RecordingHandler>> handlers_;
  Request seen_;
  int refused_ = 0;
};

TEST_F(WebSocketTest, EchoesSeveralMessagesInOrderAndSeesTheRequest) {
  StartServer();
  auto [client, handler] = Open("/api/machines/m%2D1/liveresponse?mode=x");
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(client->Write("msg" + std::to_string(i)));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(client->ReadText(), "echo:msg" + std::to_string(i));
  {
    std::lock_guard lock(mutex_);
    EXPECT_EQ(seen_.method, "GET");
    EXPECT_EQ(seen_.path, "/api/machines/m-1/liveresponse");
    EXPECT_EQ(seen_.path_params["id"], "m-1");
    EXPECT_EQ(seen_.query["mode"], "x");
    EXPECT_EQ(seen_.Header("authorization"), "Bearer t0ken");
    EXPECT_EQ(seen_.remote_address, "127.0.0.1");
  }
  EXPECT_EQ(handler->events(),
            (std::vector<std::string>{"open", "text:msg0", "text:msg1", "text:msg2", "text:msg3",
                                      "text:msg4"}));
}

TEST_F(WebSocketTest, SendTextFromAnotherThreadArrivesInOrder) {
  StartServer();
  auto [client, handler] = Open("/api/push");
  std::shared_ptr<WebSocketConnection> connection = handler->connection();
  ASSERT_NE(connection, nullptr);
  std::thread pusher([connection] {
    for (int i = 0; i < 20; ++i) connection->SendText("push" + std::to_string(i));
  });
  pusher.join();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(client->ReadText(), "push" + std::to_string(i));
}

TEST_F(WebSocketTest, CloseFlushesQueuedTextThenSendsCloseFrameWithReason) {
  StartServer();
  auto [client, handler] = Open("/api/push");
  auto connection = handler->connection();
  ASSERT_NE(connection, nullptr);
  connection->SendText("last words");
  connection->Close("session ended by the server");
  connection->SendText("dropped");  // after Close: not sent
  EXPECT_EQ(client->ReadText(), "last words");
  std::string text;
  EXPECT_EQ(client->Read(text), websocket::error::closed);
  EXPECT_EQ(client->reason().code, websocket::close_code::normal);
  const auto& got = client->reason().reason;
  EXPECT_EQ(std::string(got.data(), got.size()), "session ended by the server");
  EXPECT_TRUE(handler->WaitFor("close"));
  EXPECT_EQ(handler->Count("close"), 1);
}

TEST_F(WebSocketTest, CloseReasonIsCutTo123BytesOnACharacterBoundary) {
  StartServer();
  auto [client, handler] = Open("/api/push");
  std::string reason;
  for (int i = 0; i < 100; ++i) reason += "\xC3\xA9";  // "é": 200 bytes
  handler->connection()->Close(reason);
  std::string text;
  EXPECT_EQ(client->Read(text), websocket::error::closed);
  const auto& got = client->reason().reason;
  EXPECT_EQ(std::string(got.data(), got.size()), reason.substr(0, 122));
}

TEST_F(WebSocketTest, RefusalIsAnOrdinaryHttpResponse) {
  StartServer();
  auto client = Connect();
  websocket::response_type response;
  EXPECT_EQ(client->Handshake("/api/forbidden", &response), websocket::error::upgrade_declined);
  EXPECT_EQ(response.result_int(), 403u);
  EXPECT_EQ(response[bhttp::field::content_type], "application/json");
  EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["code"], "Forbidden");
  std::lock_guard lock(mutex_);
  EXPECT_EQ(refused_, 1);
  EXPECT_TRUE(handlers_.empty());
}

TEST_F(WebSocketTest, PlainGetIs426AndOtherMethods405) {
  StartServer();
  auto client = Connect();
  auto response = client->Http(bhttp::verb::get, "/api/machines/m1/liveresponse");
  EXPECT_EQ(response.result_int(), 426u);
  EXPECT_EQ(response[bhttp::field::upgrade], "websocket");
  EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["code"], "UpgradeRequired");
  response = client->Http(bhttp::verb::post, "/api/machines/m1/liveresponse");
  EXPECT_EQ(response.result_int(), 405u);
  EXPECT_EQ(response[bhttp::field::allow], "GET");
  // An upgrade request to an ordinary route is just a request.
  websocket::response_type ping;
  EXPECT_EQ(Connect()->Handshake("/api/ping", &ping), websocket::error::upgrade_declined);
  EXPECT_EQ(ping.result_int(), 200u);
  std::lock_guard lock(mutex_);
  EXPECT_TRUE(handlers_.empty());
}

TEST_F(WebSocketTest, TooLargeMessageClosesWith1009AndIsNotDelivered) {
  StartServer();
  auto [client, handler] = Open("/api/machines/m1/liveresponse");
  ASSERT_FALSE(client->Write(std::string(1024, 'a')));  // at the limit: fine
  EXPECT_EQ(client->ReadText(), "echo:" + std::string(1024, 'a'));
  ASSERT_FALSE(client->Write(std::string(1025, 'b')));
  std::string text;
  EXPECT_EQ(client->Read(text), websocket::error::closed);
  EXPECT_EQ(client->reason().code, websocket::close_code::too_big);
  EXPECT_TRUE(handler->WaitFor("close"));
  EXPECT_EQ(handler->events(),
            (std::vector<std::string>{"open", "text:" + std::string(1024, 'a'), "close"}));
}

TEST_F(WebSocketTest, BinaryMessageClosesWith1003AndIsNotDelivered) {
  StartServer();
  auto [client, handler] = Open("/api/machines/m1/liveresponse");
  ASSERT_FALSE(client->Write("\x01\x02", /*binary=*/true));
  std::string text;
  EXPECT_EQ(client->Read(text), websocket::error::closed);
  EXPECT_EQ(client->reason().code, websocket::close_code::unknown_data);
  EXPECT_TRUE(handler->WaitFor("close"));
  EXPECT_EQ(handler->events(), (std::vector<std::string>{"open", "close"}));
}

TEST_F(WebSocketTest, ClientDisconnectCallsOnCloseOnceAndConnectionGoesInert) {
  StartServer();
  auto [client, handler] = Open("/api/machines/m1/liveresponse");
  client->Drop();
  EXPECT_TRUE(handler->WaitFor("close"));
  auto connection = handler->connection();
  connection->SendText("nobody listens");  // no-ops, no crash
  connection->Close("late");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(handler->Count("close"), 1);
  EXPECT_EQ(handler->Count("open"), 1);
}

TEST_F(WebSocketTest, StopEndsOpenWebSocketsAndTheConnectionOutlivesTheServer) {
  StartServer();
  auto [client, handler] = Open("/api/push");
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(handler->Count("close"), 1);  // already, not eventually
  std::string text;
  EXPECT_TRUE(client->Read(text));
  server_.reset();
  handler->connection()->SendText("after the server is gone");  // a no-op
  handler->connection()->Close("gone");
  EXPECT_EQ(handler->Count("close"), 1);
}

TEST_F(WebSocketTest, QuietWebSocketOutlivesTheHttpIdleTimeout) {
  StartServer({.idle_timeout = 1s});
  auto [client, handler] = Open("/api/machines/m1/liveresponse");
  std::this_thread::sleep_for(2s);
  ASSERT_FALSE(client->Write("still there?"));
  EXPECT_EQ(client->ReadText(), "echo:still there?");
  EXPECT_EQ(handler->Count("close"), 0);
}

TEST_F(WebSocketTest, LogsOpenAndCloseWithoutHeaders) {
  testing::LogCapture capture("server.http");
  StartServer();
  {
    auto [client, handler] = Open("/api/machines/m1/liveresponse?token=q");
    client->Drop();
    EXPECT_TRUE(handler->WaitFor("close"));
  }
  server_->Stop();
  const std::string log = capture.Stop();
  EXPECT_NE(log.find("websocket /api/machines/m1/liveresponse opened"), std::string::npos) << log;
  EXPECT_NE(log.find("websocket /api/machines/m1/liveresponse closed after "), std::string::npos)
      << log;
  EXPECT_EQ(log.find("t0ken"), std::string::npos) << log;
  EXPECT_EQ(log.find("token=q"), std::string::npos) << log;
}

}  // namespace
}  // namespace quell::server::http
