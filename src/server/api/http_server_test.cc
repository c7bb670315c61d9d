#include "server/api/http_server.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>


#include <chrono>
#include <sstream>

#include "common/files.h"
#include "common/testing/log_capture.h"
#include "common/testing/test_pki.h"
#include "common/testing/temp_dir.h"

namespace quell::server::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using RawResponse = bhttp::response<bhttp::string_body>;

// A blocking TLS client with full control over the bytes, for what ApiClient cannot do:
// keep-alive, malformed requests, stalling.
class RawClient {
 public:
  RawClient(uint16_t port, const std::string& ca_pem) {
    tls_.add_certificate_authority(asio::buffer(ca_pem));
    tls_.set_verify_mode(asio::ssl::verify_peer);
    beast::get_lowest_layer(stream_).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                                           port));
    stream_.handshake(asio::ssl::stream_base::client);
  }

  void Write(std::string_view bytes) { asio::write(stream_, asio::buffer(bytes)); }

  boost::system::error_code Read(RawResponse& response) {
    boost::system::error_code ec;
    bhttp::read(stream_, buffer_, response, ec);
    return ec;
  }

  RawResponse RoundTrip(const std::string& method, const std::string& target,
                        const std::string& body = "") {
    bhttp::request<bhttp::string_body> request{bhttp::string_to_verb(method), target, 11};
    request.set(bhttp::field::host, "127.0.0.1");
    request.body() = body;
    request.prepare_payload();
    bhttp::write(stream_, request);
    RawResponse response;
    EXPECT_FALSE(Read(response));
    return response;
  }

 private:
  asio::io_context io_;
  asio::ssl::context tls_{asio::ssl::context::tls_client};
  beast::ssl_stream<beast::tcp_stream> stream_{io_, tls_};
  beast::flat_buffer buffer_;
};

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = testing::MakeTestPki();
    router_.Add("GET", "/api/ping", [](Request&) { return Response::Json(200, {{"pong", true}}); });
    router_.Add("POST", "/api/echo", [](Request& request) {
      return Response::Json(201, {{"method", request.method},
                                  {"path", request.path},
                                  {"query", request.query},
                                  {"body", request.body},
                                  {"content_type", request.Header("content-type")},
                                  {"remote", request.remote_address}});
    });
    router_.Add("DELETE", "/api/things/{id}", [](Request&) { return Response{.status = 204}; });
  }

  void StartServer(ServerOptions options = {}) {
    options.cert_pem = pki_.server.cert_pem;
    options.key_pem = pki_.server.key_pem;
    server_ = std::make_unique<HttpsServer>(options, router_);
    Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
    ASSERT_NE(server_->port(), 0);
  }

  RawClient Connect() { return RawClient(server_->port(), pki_.ca.cert_pem); }

  // The server still answers a fresh client.
  void ExpectServing() {
    RawClient client = Connect();
    EXPECT_EQ(client.RoundTrip("GET", "/api/ping").result_int(), 200u);
  }

  testing::TestPki pki_;
  Router router_;
  std::unique_ptr<HttpsServer> server_;
};

void ExpectFramed(const RawResponse& response) {
  EXPECT_EQ(response[bhttp::field::content_type], "application/json");
  EXPECT_EQ(response[bhttp::field::content_length], std::to_string(response.body().size()));
}

TEST_F(HttpsServerTest, RoundTripsRequestFields) {
  StartServer();
  RawClient client = Connect();
  RawResponse response =
      client.RoundTrip("POST", "/api/echo?$filter=status%20eq%20%27Pending%27&$top=10",
                       R"({"comment":"x"})");
  EXPECT_EQ(response.result_int(), 201u);
  ExpectFramed(response);
  auto body = nlohmann::json::parse(response.body());
  EXPECT_EQ(body["method"], "POST");
  EXPECT_EQ(body["path"], "/api/echo");
  EXPECT_EQ(body["query"]["$filter"], "status eq 'Pending'");
  EXPECT_EQ(body["query"]["$top"], "10");
  EXPECT_EQ(body["body"], R"({"comment":"x"})");
  EXPECT_EQ(body["remote"], "127.0.0.1");
}

TEST_F(HttpsServerTest, KeepsConnectionAliveAcrossRequests) {
  StartServer();
  RawClient client = Connect();
  for (int i = 0; i < 5; ++i) {
    RawResponse response = client.RoundTrip("GET", "/api/ping");
    EXPECT_EQ(response.result_int(), 200u) << i;
    EXPECT_TRUE(response.keep_alive());
  }
  RawResponse missing = client.RoundTrip("GET", "/api/nothing");
  EXPECT_EQ(missing.result_int(), 404u);
  ExpectFramed(missing);
  EXPECT_EQ(client.RoundTrip("GET", "/api/ping").result_int(), 200u);
}

TEST_F(HttpsServerTest, NoContentHasNoBodyHeaders) {
  StartServer();
  RawClient client = Connect();
  RawResponse response = client.RoundTrip("DELETE", "/api/things/1");
  EXPECT_EQ(response.result_int(), 204u);
  EXPECT_EQ(response.count(bhttp::field::content_length), 0u);
  EXPECT_EQ(client.RoundTrip("GET", "/api/ping").result_int(), 200u);  // still framed right
}

TEST_F(HttpsServerTest, StreamsFileResponsesAsAttachments) {
  quell::testing::TempDir dir;
  std::string content;
  for (int i = 0; content.size() < (3 << 20); ++i) content += std::to_string(i) + ",";
  ASSERT_TRUE(WriteFileAtomic(dir / "package.zip", content).ok());
  router_.Add("GET", "/api/file", [&](Request&) {
    return Response::File(dir / "package.zip", "application/zip", "package.zip");
  });
  router_.Add("GET", "/api/gone", [&](Request&) {
    return Response::File(dir / "missing.zip", "application/zip", "missing.zip");
  });
  StartServer();
  RawClient client = Connect();
  RawResponse response = client.RoundTrip("GET", "/api/file");
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response[bhttp::field::content_type], "application/zip");
  EXPECT_EQ(response[bhttp::field::content_disposition], "attachment; filename=\"package.zip\"");
  EXPECT_EQ(response.body().size(), content.size());
  EXPECT_TRUE(response.body() == content);
  EXPECT_EQ(client.RoundTrip("GET", "/api/gone").result_int(), 500u);
  EXPECT_EQ(client.RoundTrip("GET", "/api/ping").result_int(), 200u);  // still framed right
}

TEST_F(HttpsServerTest, ATemporaryFileResponseIsSentWholeAndThenGone) {
  quell::testing::TempDir dir;
  const std::string content(1 << 20, 'z');
  ASSERT_TRUE(WriteFileAtomic(dir / "once.zip", content).ok());
  router_.Add("GET", "/api/once", [&](Request&) {
    Response response = Response::File(dir / "once.zip", "application/zip", "once.zip");
    response.remove_file_when_open = true;
    return response;
  });
  StartServer();
  RawClient client = Connect();
  RawResponse response = client.RoundTrip("GET", "/api/once");
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_TRUE(response.body() == content);
  EXPECT_FALSE(std::filesystem::exists(dir / "once.zip"));
}

TEST_F(HttpsServerTest, OversizeBodyIs413AndClosesWhileServerKeepsServing) {
  StartServer({.max_body_bytes = 1024});
  {
    RawClient client = Connect();
    // Well beyond socket buffers: the server must drain, not reset, to deliver its 413.
    RawResponse response = client.RoundTrip("POST", "/api/echo", std::string(4 << 20, 'x'));
    EXPECT_EQ(response.result_int(), 413u);
    ExpectFramed(response);
    EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["code"], "PayloadTooLarge");
    EXPECT_FALSE(response.keep_alive());
    RawResponse after;
    EXPECT_TRUE(client.Read(after));  // the server closed the connection
  }
  {
    RawClient client = Connect();
    EXPECT_EQ(client.RoundTrip("POST", "/api/echo", std::string(1024, 'x')).result_int(), 201u);
  }
}

TEST_F(HttpsServerTest, RouteWithItsOwnBodyLimitAcceptsMoreAndOthersKeepTheDefault) {
  router_.Add("POST", "/api/upload",
              [](Request& request) {
                return Response::Json(200, {{"size", request.body.size()}});
              },
              {.max_body_bytes = 64 << 10});
  StartServer({.max_body_bytes = 1024});
  {
    // Over the server's default, within the route's own limit.
    RawClient client = Connect();
    RawResponse response = client.RoundTrip("POST", "/api/upload", std::string(60 << 10, 'u'));
    EXPECT_EQ(response.result_int(), 200u) << response.body();
    EXPECT_EQ(nlohmann::json::parse(response.body())["size"], 60 << 10);
    // Keep-alive: the next request on the same connection gets the default limit again.
    EXPECT_EQ(client.RoundTrip("POST", "/api/echo", std::string(2048, 'e')).result_int(), 413u);
  }
  {
    // Over the route's limit: 413 naming that limit.
    RawClient client = Connect();
    RawResponse response = client.RoundTrip("POST", "/api/upload", std::string(1 << 20, 'u'));
    EXPECT_EQ(response.result_int(), 413u);
    ExpectFramed(response);
    auto error = nlohmann::json::parse(response.body())["error"];
    EXPECT_EQ(error["code"], "PayloadTooLarge");
    EXPECT_EQ(error["message"], "request body exceeds 65536 bytes");
    EXPECT_FALSE(response.keep_alive());
  }
  {
    // Other routes keep the default, and say so.
    RawClient client = Connect();
    RawResponse response = client.RoundTrip("POST", "/api/echo", std::string(2048, 'e'));
    EXPECT_EQ(response.result_int(), 413u);
    EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["message"],
              "request body exceeds 1024 bytes");
  }
  {
    // A chunked body declares no length up front: the route's limit still bounds it.
    RawClient client = Connect();
    std::string chunk(32 << 10, 'c');
    std::string request =
        "POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) request += "8000\r\n" + chunk + "\r\n";
    request += "0\r\n\r\n";
    client.Write(request);
    RawResponse response;
    ASSERT_FALSE(client.Read(response));
    EXPECT_EQ(response.result_int(), 413u);
    EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["message"],
              "request body exceeds 65536 bytes");
  }
  {
    RawClient client = Connect();
    std::string request =
        "POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::string chunk(32 << 10, 'c');
    request += "8000\r\n" + chunk + "\r\n0\r\n\r\n";
    client.Write(request);
    RawResponse response;
    ASSERT_FALSE(client.Read(response));
    EXPECT_EQ(response.result_int(), 200u);
    EXPECT_EQ(nlohmann::json::parse(response.body())["size"], 32 << 10);
  }
  ExpectServing();
}

TEST_F(HttpsServerTest, OversizeHeaderIs431) {
  StartServer({.max_header_bytes = 4096});
  RawClient client = Connect();
  client.Write("GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8192, 'a') +
               "\r\n\r\n");
  RawResponse response;
  ASSERT_FALSE(client.Read(response));
  EXPECT_EQ(response.result_int(), 431u);
  ExpectFramed(response);
  ExpectServing();
}

TEST_F(HttpsServerTest, MalformedHttpIs400AndServerSurvives) {
  StartServer();
  {
    RawClient client = Connect();
    client.Write("HELLO THERE\r\n\r\n");
    RawResponse response;
    ASSERT_FALSE(client.Read(response));
    EXPECT_EQ(response.result_int(), 400u);
    ExpectFramed(response);
    EXPECT_EQ(nlohmann::json::parse(response.body())["error"]["code"], "BadRequest");
  }
  {
    // Plain-text garbage where a TLS handshake belongs.
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    constexpr char kGarbage[] = "\x16\x03\x01garbage\0\xff\r\n\r\n";
    asio::write(socket, asio::buffer(kGarbage, sizeof(kGarbage) - 1));
    std::string reply;
    boost::system::error_code ec;
    asio::read(socket, asio::dynamic_buffer(reply), ec);
    EXPECT_EQ(ec, asio::error::eof);  // closed after at most a TLS alert
    EXPECT_LT(reply.size(), 64u);
    EXPECT_EQ(reply.find("HTTP/"), std::string::npos);
  }
  ExpectServing();
}

TEST_F(HttpsServerTest, IdleClientIsDisconnected) {
  StartServer({.idle_timeout = std::chrono::seconds(1)});
  RawClient client = Connect();
  client.Write("GET /api/ping HTTP/1.1\r\nHost: x\r\n");  // and then nothing
  const auto start = std::chrono::steady_clock::now();
  RawResponse response;
  EXPECT_TRUE(client.Read(response));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(500));
  EXPECT_LT(waited, std::chrono::seconds(5));
  ExpectServing();
}

TEST_F(HttpsServerTest, LogsOneLinePerRequestWithoutSecrets) {
  testing::LogCapture capture("server.http");
  StartServer();
  {
    RawClient client = Connect();
    client.Write("GET /api/ping?token=q HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer s3cret-token\r\n\r\n");
    RawResponse response;
    ASSERT_FALSE(client.Read(response));
    EXPECT_EQ(response.result_int(), 200u);
  }
  server_->Stop();  // joins the IO threads: every line is written
  const std::string log = capture.Stop();
  EXPECT_NE(log.find("GET /api/ping 200 "), std::string::npos) << log;
  EXPECT_EQ(log.find("s3cret"), std::string::npos) << log;
  EXPECT_EQ(log.find("token=q"), std::string::npos) << log;  // the query may hold secrets too
}

TEST_F(HttpsServerTest, StopClosesOpenConnections) {
  StartServer();
  RawClient client = Connect();
  EXPECT_EQ(client.RoundTrip("GET", "/api/ping").result_int(), 200u);
  server_->Stop();
  EXPECT_EQ(server_->port(), 0);
  RawResponse response;
  EXPECT_TRUE(client.Read(response));
}

TEST_F(HttpsServerTest, StartReportsBindAndCertificateErrors) {
  StartServer();
  HttpsServer second({.port = server_->port(), .cert_pem = pki_.server.cert_pem,
                      .key_pem = pki_.server.key_pem},
                     router_);
  Status in_use = second.Start();
  EXPECT_EQ(in_use.code(), StatusCode::kUnavailable);
  EXPECT_NE(in_use.message().find("in use"), std::string::npos) << in_use.ToString();

  HttpsServer bad_cert({.cert_pem = "not a certificate", .key_pem = pki_.server.key_pem},
                       router_);
  EXPECT_EQ(bad_cert.Start().code(), StatusCode::kInvalidArgument);
  HttpsServer wrong_key({.cert_pem = pki_.server.cert_pem, .key_pem = pki_.ca.key_pem}, router_);
  EXPECT_EQ(wrong_key.Start().code(), StatusCode::kInvalidArgument);
  HttpsServer bad_address({.address = "not-an-ip", .cert_pem = pki_.server.cert_pem,
                           .key_pem = pki_.server.key_pem},
                          router_);
  EXPECT_EQ(bad_address.Start().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server_->Start().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace quell::server::http
