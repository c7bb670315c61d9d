// The agent's side of the contract against an in-process gateway over real TLS on loopback:
// enrollment with the pinned CA, Hello first, spooled results delivered and acknowledged,
// action requests dispatched, reconnect after a server restart, prompt stop.
#include "agent/channel/server_channel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <grpcpp/grpcpp.h>

#include <thread>

#include "agent/channel/enrollment.h"
#include "common/testing/temp_dir.h"
#include "common/pki.h"
#include "quell/v1/agent.grpc.pb.h"

namespace quell::agent {
namespace {

using namespace std::chrono_literals;

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

// A minimal AgentGateway: enrolls with one token, welcomes certified devices, records what
// they send and acknowledges every sequenced message.
class FakeGateway final : public quell::v1::AgentGateway::Service {
 public:
  explicit FakeGateway(const pki::KeyAndCert& ca) : ca_(ca) {}

  grpc::Status Enroll(grpc::ServerContext*, const quell::v1::EnrollRequest* request,
                      quell::v1::EnrollResponse* response) override {
    if (request->enrollment_token() != "good-token") {
      return {grpc::StatusCode::UNAUTHENTICATED, "unknown enrollment token"};
    }
    auto issued = pki::SignClientCertificate(ca_, request->csr_pem(), "device-1", 30);
    if (!issued.ok()) return {grpc::StatusCode::INVALID_ARGUMENT, issued.status().message()};
    response->set_device_id("device-1");
    response->set_certificate_pem(issued->cert_pem);
    response->set_ca_certificate_pem(ca_.cert_pem);
    return grpc::Status::OK;
  }

  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<quell::v1::ServerMessage, quell::v1::AgentMessage>* stream)
      override {
    auto cn = context->auth_context()->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
    if (cn.empty()) return {grpc::StatusCode::UNAUTHENTICATED, "no device certificate"};
    quell::v1::AgentMessage message;
    if (!stream->Read(&message) || !message.has_hello()) {
      return {grpc::StatusCode::FAILED_PRECONDITION, "Hello must come first"};
    }
    {
      std::lock_guard lock(mu_);
      hellos_.push_back(message.hello());
      stream_ = stream;
      quell::v1::ServerMessage welcome;
      welcome.mutable_welcome()->set_device_id(std::string(cn[0].data(), cn[0].size()));
      welcome.mutable_welcome()->set_heartbeat_interval_seconds(1);
      stream->Write(welcome);
    }
    while (stream->Read(&message)) {
      std::lock_guard lock(mu_);
      received_.push_back(message);
      uint64_t sequence = message.has_action_update() ? message.action_update().sequence()
                          : message.has_notice()      ? message.notice().sequence()
                                                      : 0;
      if (sequence > 0) {
        quell::v1::ServerMessage ack;
        ack.mutable_update_ack()->set_sequence(sequence);
        stream->Write(ack);
      }
    }
    std::lock_guard lock(mu_);
    stream_ = nullptr;
    return grpc::Status::OK;
  }

  bool Push(const quell::v1::ServerMessage& message) {
    std::lock_guard lock(mu_);
    return stream_ != nullptr && stream_->Write(message);
  }
  std::vector<quell::v1::Hello> hellos() {
    std::lock_guard lock(mu_);
    return hellos_;
  }
  // Ids of the action updates received, in order.
  std::vector<std::string> update_ids() {
    std::lock_guard lock(mu_);
    std::vector<std::string> ids;
    for (const auto& m : received_) {
      if (m.has_action_update()) ids.push_back(m.action_update().action_id());
    }
    return ids;
  }
  int heartbeats() {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count_if(received_.begin(), received_.end(),
                                          [](const auto& m) { return m.has_heartbeat(); }));
  }

 private:
  const pki::KeyAndCert ca_;
  std::mutex mu_;
  grpc::ServerReaderWriter<quell::v1::ServerMessage, quell::v1::AgentMessage>* stream_ = nullptr;
  std::vector<quell::v1::Hello> hellos_;
  std::vector<quell::v1::AgentMessage> received_;
};

// Starts the gateway with TLS (client certificates verified when presented) on `port`
// (0 = any free port).
std::unique_ptr<grpc::Server> StartServer(FakeGateway& gateway, const pki::KeyAndCert& ca,
                                          const pki::KeyAndCert& server_cert, int& port) {
  grpc::SslServerCredentialsOptions tls(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  tls.pem_root_certs = ca.cert_pem;
  tls.pem_key_cert_pairs.push_back({server_cert.key_pem, server_cert.cert_pem});
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::SslServerCredentials(tls),
                           &port);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.RegisterService(&gateway);
  return builder.BuildAndStart();
}

class RecordingHandler final : public ServerChannel::Handler {
 public:
  void OnActionRequest(const quell::v1::ActionRequest& request) override {
    std::lock_guard lock(mu_);
    requests_.push_back(request.action_id());
  }
  void OnCancelAction(const quell::v1::CancelAction&) override {}
  void OnIndicatorDelta(const quell::v1::IndicatorDelta& delta) override {
    std::lock_guard lock(mu_);
    delta_versions_.push_back(delta.to_version());
  }
  std::vector<uint64_t> delta_versions() {
    std::lock_guard lock(mu_);
    return delta_versions_;
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> requests_;
  std::vector<uint64_t> delta_versions_;
};

quell::v1::AgentMessage Final(const std::string& id) {
  quell::v1::AgentMessage m;
  m.mutable_action_update()->set_action_id(id);
  m.mutable_action_update()->set_state(quell::v1::ACTION_STATE_SUCCEEDED);
  return m;
}

class ServerChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = pki::CreateCertificateAuthority("test ca", 30).value();
    server_cert_ = pki::CreateServerCertificate(ca_, "quell-server", {"quell-server"}, 30).value();
    gateway_ = std::make_unique<FakeGateway>(ca_);
    server_ = StartServer(*gateway_, ca_, server_cert_, port_);
    ASSERT_NE(server_, nullptr);
    endpoint_ = {.target = "127.0.0.1:" + std::to_string(port_),
                 .server_name = "quell-server",
                 .ca_pem = ca_.cert_pem};
  }

  pki::KeyAndCert ca_;
  pki::KeyAndCert server_cert_;
  std::unique_ptr<FakeGateway> gateway_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  ServerEndpoint endpoint_;
};

TEST_F(ServerChannelTest, EnrollsOnlyWithAGoodTokenAndOnlyWithThePinnedServer) {
  quell::v1::Inventory inventory;
  inventory.set_hostname("victim-1");
  auto refused = Enroll(endpoint_, "wrong-token", inventory);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);

  ServerEndpoint other_pin = endpoint_;
  other_pin.ca_pem = pki::CreateCertificateAuthority("someone else", 30)->cert_pem;
  EXPECT_EQ(Enroll(other_pin, "good-token", inventory, 3s).status().code(),
            StatusCode::kUnavailable);

  auto identity = Enroll(endpoint_, "good-token", inventory);
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  EXPECT_EQ(identity->device_id, "device-1");
  EXPECT_EQ(pki::InspectCertificate(identity->cert_pem)->common_name, "device-1");
}

TEST_F(ServerChannelTest, DeliversSpoolAcrossAServerRestartAndStopsPromptly) {
  quell::testing::TempDir dir;
  auto identity = Enroll(endpoint_, "good-token", quell::v1::Inventory());
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  auto spool = Spool::Open(dir.path()).value();
  auto before = Final("done-while-offline");
  ASSERT_TRUE(spool->Append(before).ok());

  RecordingHandler handler;
  ServerChannel channel(
      {.endpoint = endpoint_,
       .identity = *identity,
       .reconnect_initial = 20ms,
       .reconnect_max = 200ms,
       .inventory =
           [] {
             quell::v1::Inventory inv;
             inv.set_hostname("victim-1");
             return inv;
           },
       .running_action_ids = [] { return std::vector<std::string>{"still-running"}; },
       .indicator_version = [] { return uint64_t{41}; }},
      *spool, handler);
  std::jthread agent([&](std::stop_token stop) { channel.Run(stop); });

  // Hello first, with inventory and running actions; then the spool, acknowledged.
  ASSERT_TRUE(Eventually([&] { return channel.connected(); }));
  ASSERT_EQ(gateway_->hellos().size(), 1u);
  EXPECT_EQ(gateway_->hellos()[0].inventory().hostname(), "victim-1");
  EXPECT_THAT(gateway_->hellos()[0].running_action_ids(), ::testing::ElementsAre("still-running"));
  EXPECT_EQ(gateway_->hellos()[0].indicator_version(), 41u);
  ASSERT_TRUE(Eventually([&] { return spool->size() == 0; }));
  EXPECT_THAT(gateway_->update_ids(), ::testing::ElementsAre("done-while-offline"));

  // The server's requests reach the handler; heartbeats flow at the Welcome's interval.
  quell::v1::ServerMessage request;
  request.mutable_action_request()->set_action_id("a-1");
  request.mutable_action_request()->set_type("DiagnosticNoop");
  ASSERT_TRUE(gateway_->Push(request));
  ASSERT_TRUE(Eventually([&] { return handler.requests().size() == 1; }));
  quell::v1::ServerMessage delta;
  delta.mutable_indicator_delta()->set_from_version(41);
  delta.mutable_indicator_delta()->set_to_version(42);
  ASSERT_TRUE(gateway_->Push(delta));
  ASSERT_TRUE(Eventually([&] { return handler.delta_versions() == std::vector<uint64_t>{42}; }));
  ASSERT_TRUE(Eventually([&] { return gateway_->heartbeats() >= 1; }, 5s));

  // The server goes away; a result produced meanwhile is spooled, not lost.
  server_->Shutdown(std::chrono::system_clock::now() + 100ms);
  server_.reset();
  ASSERT_TRUE(Eventually([&] { return !channel.connected(); }));
  ASSERT_TRUE(channel.SendDurable(Final("done-during-outage")).ok());
  EXPECT_EQ(spool->size(), 1u);

  // The server comes back on the same port: the agent reconnects, says Hello, resends.
  server_ = StartServer(*gateway_, ca_, server_cert_, port_);
  ASSERT_NE(server_, nullptr);
  ASSERT_TRUE(Eventually([&] { return channel.sessions() == 2 && spool->size() == 0; }));
  EXPECT_EQ(gateway_->hellos().size(), 2u);
  EXPECT_THAT(gateway_->update_ids(),
              ::testing::ElementsAre("done-while-offline", "done-during-outage"));

  const auto stop_started = std::chrono::steady_clock::now();
  agent.request_stop();
  agent.join();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_started, 2s);
}

TEST_F(ServerChannelTest, ADeviceWithoutACertificateTheServerTrustsIsRefused) {
  quell::testing::TempDir dir;
  auto spool = Spool::Open(dir.path()).value();
  // A certificate from another CA: the TLS handshake fails, the agent keeps retrying.
  auto rogue_ca = pki::CreateCertificateAuthority("rogue", 30).value();
  auto key = pki::CreateKeyAndCsr("rogue").value();
  auto cert = pki::SignClientCertificate(rogue_ca, key.cert_pem, "device-x", 30).value();
  RecordingHandler handler;
  ServerChannel channel({.endpoint = endpoint_,
                         .identity = {"device-x", key.key_pem, cert.cert_pem},
                         .reconnect_initial = 20ms,
                         .reconnect_max = 100ms},
                        *spool, handler);
  std::jthread agent([&](std::stop_token stop) { channel.Run(stop); });
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(channel.connected());
  EXPECT_EQ(channel.sessions(), 0u);
  EXPECT_TRUE(gateway_->hellos().empty());
}

}  // namespace
}  // namespace quell::agent
