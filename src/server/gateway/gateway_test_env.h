// A real gateway (Connect and ArtifactTransfer) on 127.0.0.1:<free port> with TLS, a real CA and a real SQLite store in a
// temp dir — what the gateway tests (and nothing else) run against.
#pragma once

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "common/pki.h"
#include "common/testing/temp_dir.h"
#include "server/blobs/blob_store.h"
#include "server/gateway/agent_gateway.h"
#include "server/gateway/artifact_transfer.h"
#include "server/gateway/enrollment.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server {

class GatewayTestEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_ + "/quell.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto ca = CertificateAuthority::LoadOrCreate({.dir = dir_ + "/pki", .server_names = {}});
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = std::make_unique<CertificateAuthority>(std::move(ca).value());
    actions_ = std::make_unique<ActionCenter>(*store_, clock_);
    actions_->SetDispatcher(&sessions_);
    // Not started: a test sends pending indicator deltas with indicators_->PublishPending().
    indicators_ = std::make_unique<IndicatorPublisher>(*store_, clock_);
    gateway_ = std::make_unique<AgentGateway>(
        *store_, *ca_, *actions_, sessions_, presence_, clock_,
        AgentGatewayOptions{.heartbeat_interval_seconds = 7, .indicators = indicators_.get()});
    auto blobs = BlobStore::Open(dir_ + "/blobs", {.max_blob_bytes = 8 << 20});
    ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
    blobs_ = std::move(blobs).value();
    transfer_ = std::make_unique<ArtifactTransferService>(*store_, *blobs_, clock_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", AgentGateway::Credentials(*ca_), &port_);
    builder.RegisterService(gateway_.get());
    builder.RegisterService(transfer_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
  }

  // A channel to the gateway that trusts our CA and presents `key_and_cert` if given.
  std::shared_ptr<grpc::Channel> Channel(const pki::KeyAndCert* key_and_cert = nullptr) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ca_->ca_cert_pem();
    if (key_and_cert) {
      options.pem_private_key = key_and_cert->key_pem;
      options.pem_cert_chain = key_and_cert->cert_pem;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("quell-server");
    return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_),
                                     grpc::SslCredentials(options), args);
  }

  struct EnrolledAgent {
    std::string device_id;
    pki::KeyAndCert identity;  // key + device certificate
  };

  EnrolledAgent Enroll(const std::string& hostname) {
    auto token = CreateEnrollmentToken(*store_, clock_, 1, 60'000);
    EXPECT_TRUE(token.ok());
    auto csr = pki::CreateKeyAndCsr(hostname);
    EXPECT_TRUE(csr.ok());
    auto stub = quell::v1::AgentGateway::NewStub(Channel());
    quell::v1::EnrollRequest request;
    request.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
    request.set_enrollment_token(*token);
    request.set_csr_pem(csr->cert_pem);
    request.mutable_inventory()->set_hostname(hostname);
    quell::v1::EnrollResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub->Enroll(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.device_id(), {csr->key_pem, response.certificate_pem()}};
  }

  quell::testing::TempDir temp_dir_;  // declared first: removed after everything using it
  std::string dir_ = temp_dir_.path();
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<CertificateAuthority> ca_;
  SessionRegistry sessions_;
  Presence presence_;
  std::unique_ptr<ActionCenter> actions_;
  std::unique_ptr<IndicatorPublisher> indicators_;
  std::unique_ptr<AgentGateway> gateway_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<ArtifactTransferService> transfer_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace quell::server
