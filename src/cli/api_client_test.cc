#include "cli/api_client.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "common/pki.h"
#include "server/api/http_server.h"

namespace quell::cli {
namespace {

namespace http = quell::server::http;

TEST(ParseApiUrlTest, AcceptsHostPortAndPrefix) {
  auto url = ParseApiUrl("https://127.0.0.1:8443");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8443);
  EXPECT_EQ(url->base_path, "");

  url = ParseApiUrl("HTTPS://quell.example/prefix/");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "quell.example");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->base_path, "/prefix");

  url = ParseApiUrl("https://[::1]:9000");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 9000);
}

TEST(ParseApiUrlTest, RejectsBadUrls) {
  for (const char* bad : {"", "http://127.0.0.1:8443", "127.0.0.1:8443", "https://",
                          "https://:8443", "https://h:0", "https://h:65536", "https://h:x",
                          "https://[::1", "https://[nope]:1", "https://user@h", "https://h/?q"}) {
    auto url = ParseApiUrl(bad);
    EXPECT_FALSE(url.ok()) << bad;
    if (!url.ok()) {
      EXPECT_EQ(url.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

// A real HttpsServer on 127.0.0.1:<free port> with a certificate from a throwaway CA whose
// certificate is written to a temporary file for the client.
class ApiClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = pki::CreateCertificateAuthority("Quell Test CA", 1);
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    auto cert = pki::CreateServerCertificate(*ca, "quell-server", {"127.0.0.1"}, 1);
    ASSERT_TRUE(cert.ok()) << cert.status().ToString();
    dir_ = std::filesystem::temp_directory_path() /
           ("quell-api-client-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    ca_file_ = WriteFile("ca.pem", ca->cert_pem);

    router_.Add("GET", "/api/whoami", [](http::Request& request) {
      return http::Response::Json(200, {{"authorization", request.Header("authorization")}});
    });
    router_.Add("POST", "/api/echo", [](http::Request& request) {
      return http::Response::Json(200, {{"body", request.body},
                                        {"content_type", request.Header("content-type")}});
    });
    server_ = std::make_unique<http::HttpsServer>(
        http::ServerOptions{.cert_pem = cert->cert_pem, .key_pem = cert->key_pem,
                            .max_body_bytes = 64 << 10},
        router_);
    Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }

  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << content;
    return path;
  }

  ApiClientOptions Options() {
    return {.base_url = "https://127.0.0.1:" + std::to_string(server_->port()),
            .token = "t0ken",
            .ca_file = ca_file_};
  }

  std::filesystem::path dir_;
  std::string ca_file_;
  http::Router router_;
  std::unique_ptr<http::HttpsServer> server_;
};

TEST_F(ApiClientTest, GetSendsBearerToken) {
  ApiClient client(Options());
  auto response = client.Send("GET", "/api/whoami");
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(response->body)["authorization"], "Bearer t0ken");
}

TEST_F(ApiClientTest, PostSendsJsonBody) {
  ApiClient client(Options());
  auto response = client.Send("POST", "/api/echo", R"({"comment":"isolate"})");
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  auto body = nlohmann::json::parse(response->body);
  EXPECT_EQ(body["body"], R"({"comment":"isolate"})");
  EXPECT_EQ(body["content_type"], "application/json");
}

TEST_F(ApiClientTest, ErrorStatusIsAResponseNotAnError) {
  ApiClient client(Options());
  auto response = client.Send("GET", "/api/nothing");
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(nlohmann::json::parse(response->body)["error"]["code"], "NotFound");
}

TEST_F(ApiClientTest, OversizeBodyGets413AndServerServesNextClient) {
  ApiClient client(Options());
  auto response = client.Send("POST", "/api/echo", std::string(2 << 20, 'x'));
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 413);
  auto next = client.Send("POST", "/api/echo", "{}");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->status, 200);
}

TEST_F(ApiClientTest, WrongCaFailsVerification) {
  auto other_ca = pki::CreateCertificateAuthority("Someone Else", 1);
  ASSERT_TRUE(other_ca.ok());
  ApiClientOptions options = Options();
  options.ca_file = WriteFile("other-ca.pem", other_ca->cert_pem);
  auto response = ApiClient(options).Send("GET", "/api/whoami");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(response.status().message().find("TLS certificate verification failed"),
            std::string::npos)
      << response.status().ToString();

  options.insecure = true;  // the debugging escape hatch skips verification
  auto insecure = ApiClient(options).Send("GET", "/api/whoami");
  ASSERT_TRUE(insecure.ok()) << insecure.status().ToString();
  EXPECT_EQ(insecure->status, 200);
}

TEST_F(ApiClientTest, HostNameMustMatchCertificate) {
  // Same server and trusted CA, but "localhost" is not among the certificate's SANs.
  ApiClientOptions options = Options();
  options.base_url = "https://localhost:" + std::to_string(server_->port());
  auto response = ApiClient(options).Send("GET", "/api/whoami");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(response.status().message().find("mismatch"), std::string::npos)
      << response.status().ToString();
}

TEST_F(ApiClientTest, ClosedPortIsAClearError) {
  ApiClientOptions options = Options();
  const uint16_t port = server_->port();
  server_->Stop();
  auto response = ApiClient(options).Send("GET", "/api/whoami");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(response.status().message(),
            "cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST_F(ApiClientTest, RejectsBadInputBeforeConnecting) {
  ApiClientOptions options = Options();
  EXPECT_EQ(ApiClient(options).Send("FROB", "/api/x").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ApiClient(options).Send("GET", "api/x").status().code(),
            StatusCode::kInvalidArgument);
  options.ca_file = (dir_ / "missing.pem").string();
  Status missing_ca = ApiClient(options).Send("GET", "/api/x").status();
  EXPECT_EQ(missing_ca.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing_ca.message().find("missing.pem"), std::string::npos);
  options.base_url = "http://127.0.0.1:1";
  EXPECT_EQ(ApiClient(options).Send("GET", "/api/x").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quell::cli
