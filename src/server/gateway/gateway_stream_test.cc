// The Connect stream end to end over real TLS: who may connect, what a connection records,
// and how actions travel to the agent and their results back.
#include <gtest/gtest.h>

#include "server/gateway/gateway_test_env.h"

namespace quell::server {
namespace {

using quell::v1::AgentMessage;
using quell::v1::ServerMessage;

class GatewayStreamTest : public GatewayTestEnv {
 protected:
  struct Stream {
    std::unique_ptr<quell::v1::AgentGateway::Stub> stub;
    std::unique_ptr<grpc::ClientContext> context = std::make_unique<grpc::ClientContext>();
    std::unique_ptr<grpc::ClientReaderWriter<AgentMessage, ServerMessage>> rw;

    bool Write(AgentMessage m) {
      m.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
      return rw->Write(m);
    }
    ServerMessage Read() {
      ServerMessage m;
      EXPECT_TRUE(rw->Read(&m));
      return m;
    }
  };

  Stream Open(const pki::KeyAndCert* identity) {
    Stream s;
    s.stub = quell::v1::AgentGateway::NewStub(Channel(identity));
    s.context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    s.rw = s.stub->Connect(s.context.get());
    return s;
  }

  Stream Connect(const EnrolledAgent& agent, const std::string& hostname) {
    Stream s = Open(&agent.identity);
    AgentMessage hello;
    hello.mutable_hello()->mutable_inventory()->set_hostname(hostname);
    hello.mutable_hello()->mutable_inventory()->add_ip_addresses("10.77.0.11");
    hello.mutable_hello()->mutable_inventory()->set_agent_version("9.9.9");
    EXPECT_TRUE(s.Write(hello));
    ServerMessage welcome = s.Read();
    EXPECT_TRUE(welcome.has_welcome());
    EXPECT_EQ(welcome.welcome().device_id(), agent.device_id);
    EXPECT_EQ(welcome.welcome().heartbeat_interval_seconds(), 7u);
    return s;
  }

  MachineAction Request(const std::string& device_id, const std::string& type) {
    const ActionTypeSpec* spec = FindActionType(type);
    auto body = spec->parse_body({{"Comment", "test"}});
    auto action = actions_->Create(
        {.machine_id = device_id, .spec = spec, .body = *body, .requestor = "tester"});
    EXPECT_TRUE(action.ok()) << action.status().ToString();
    return *action;
  }

  template <typename Pred>
  bool Eventually(Pred pred) {
    for (int i = 0; i < 200; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
};

TEST_F(GatewayStreamTest, HelloRecordsInventoryAndRegistersTheSession) {
  EnrolledAgent agent = Enroll("h1");
  Stream s = Connect(agent, "h1-renamed");
  Device d = store_->GetDevice(agent.device_id).value();
  EXPECT_EQ(d.computer_dns_name, "h1-renamed");
  EXPECT_EQ(d.last_ip_address, "10.77.0.11");
  EXPECT_EQ(d.agent_version, "9.9.9");
  EXPECT_TRUE(Eventually([&] { return sessions_.ConnectedCount() == 1; }));
  s.rw->WritesDone();
  EXPECT_TRUE(s.rw->Finish().ok());
  EXPECT_TRUE(Eventually([&] { return sessions_.ConnectedCount() == 0; }));
}

TEST_F(GatewayStreamTest, ActionGoesOutAndItsResultComesBackAcknowledged) {
  EnrolledAgent agent = Enroll("h1");
  Stream s = Connect(agent, "h1");
  MachineAction action = Request(agent.device_id, "Isolate");
  ServerMessage request = s.Read();
  ASSERT_TRUE(request.has_action_request());
  EXPECT_EQ(request.action_request().action_id(), action.id);
  EXPECT_EQ(request.action_request().type(), "Isolate");
  EXPECT_EQ(nlohmann::json::parse(request.action_request().parameters_json())["IsolationType"],
            "Full");

  AgentMessage done;
  done.mutable_action_update()->set_action_id(action.id);
  done.mutable_action_update()->set_sequence(41);
  done.mutable_action_update()->set_state(quell::v1::ACTION_STATE_SUCCEEDED);
  ASSERT_TRUE(s.Write(done));
  // The request may arrive twice (delivered on creation and again by the connect-time
  // redelivery racing with it); the agent's journal makes that harmless.
  ServerMessage ack = s.Read();
  while (ack.has_action_request()) ack = s.Read();
  ASSERT_TRUE(ack.has_update_ack());
  EXPECT_EQ(ack.update_ack().sequence(), 41u);
  // The ack comes after the transition was persisted.
  EXPECT_EQ(store_->GetAction(action.id)->status, ActionStatus::kSucceeded);
  EXPECT_EQ(store_->GetDevice(agent.device_id)->isolation, IsolationState::kFull);
}

TEST_F(GatewayStreamTest, PendingActionsAreDeliveredOnConnect) {
  EnrolledAgent agent = Enroll("h1");
  MachineAction action = Request(agent.device_id, "Isolate");  // device offline
  EXPECT_EQ(store_->GetAction(action.id)->status, ActionStatus::kPending);
  Stream s = Connect(agent, "h1");
  ServerMessage request = s.Read();
  ASSERT_TRUE(request.has_action_request());
  EXPECT_EQ(request.action_request().action_id(), action.id);
}

TEST_F(GatewayStreamTest, ACancelAskedForWhileTheDeviceWasAwayFollowsItsAction) {
  EnrolledAgent agent = Enroll("h1");
  MachineAction action = Request(agent.device_id, "Isolate");
  {
    Stream s = Connect(agent, "h1");
    ASSERT_TRUE(s.Read().has_action_request());
    AgentMessage started;
    started.mutable_action_update()->set_action_id(action.id);
    started.mutable_action_update()->set_state(quell::v1::ACTION_STATE_IN_PROGRESS);
    ASSERT_TRUE(s.Write(started));
    ASSERT_TRUE(Eventually(
        [&] { return store_->GetAction(action.id)->status == ActionStatus::kInProgress; }));
    s.context->TryCancel();
  }
  ASSERT_TRUE(Eventually([&] { return sessions_.ConnectedCount() == 0; }));
  ASSERT_TRUE(actions_->Cancel(action.id, "tester", "while away").ok());

  Stream s = Connect(agent, "h1");
  ServerMessage request = s.Read();
  ASSERT_TRUE(request.has_action_request());
  EXPECT_EQ(request.action_request().action_id(), action.id);
  ServerMessage cancel = s.Read();
  ASSERT_TRUE(cancel.has_cancel_action());
  EXPECT_EQ(cancel.cancel_action().action_id(), action.id);
  EXPECT_EQ(cancel.cancel_action().comment(), "while away");
}

TEST_F(GatewayStreamTest, HeartbeatsAreBatchedThroughPresence) {
  EnrolledAgent agent = Enroll("h1");
  Stream s = Connect(agent, "h1");
  UnixMillis connected = store_->GetDevice(agent.device_id)->last_seen;
  clock_.Advance(5'000);
  AgentMessage heartbeat;
  heartbeat.mutable_heartbeat()->set_sent_unix_ms(clock_.Now());
  ASSERT_TRUE(s.Write(heartbeat));
  ASSERT_TRUE(Eventually([&] { return presence_.Pending(agent.device_id) == clock_.Now(); }));
  EXPECT_EQ(store_->GetDevice(agent.device_id)->last_seen, connected);  // not one commit each
  ASSERT_TRUE(presence_.Flush(*store_).ok());
  EXPECT_EQ(store_->GetDevice(agent.device_id)->last_seen, clock_.Now());
}

TEST_F(GatewayStreamTest, NoticesLandInTheAuditLog) {
  EnrolledAgent agent = Enroll("h1");
  Stream s = Connect(agent, "h1");
  AgentMessage notice;
  notice.mutable_notice()->set_kind("IsolationTampered");
  notice.mutable_notice()->set_message("table removed; restored");
  notice.mutable_notice()->set_sequence(3);
  ASSERT_TRUE(s.Write(notice));
  EXPECT_EQ(s.Read().update_ack().sequence(), 3u);
  auto audit = store_->ListAudit({.target = agent.device_id}).value();
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit.back().operation, "device.notice");
  EXPECT_EQ(audit.back().comment, "table removed; restored");
}

TEST_F(GatewayStreamTest, ConnectWithoutACertificateIsRefused) {
  Stream s = Open(nullptr);
  AgentMessage hello;
  hello.mutable_hello();
  s.Write(hello);
  ServerMessage m;
  EXPECT_FALSE(s.rw->Read(&m));
  grpc::Status status = s.rw->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(GatewayStreamTest, OffboardedDeviceIsRefused) {
  EnrolledAgent agent = Enroll("h1");
  Device d = store_->GetDevice(agent.device_id).value();
  d.offboarded = true;
  ASSERT_TRUE(store_->UpdateDevice(d).ok());
  Stream s = Open(&agent.identity);
  AgentMessage hello;
  hello.mutable_hello();
  s.Write(hello);
  ServerMessage m;
  EXPECT_FALSE(s.rw->Read(&m));
  EXPECT_EQ(s.rw->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(GatewayStreamTest, UnknownProtocolVersionIsRefused) {
  EnrolledAgent agent = Enroll("h1");
  Stream s = Open(&agent.identity);
  AgentMessage hello;
  hello.set_protocol_version(static_cast<quell::v1::ProtocolVersion>(99));
  hello.mutable_hello();
  s.rw->Write(hello);
  ServerMessage m;
  EXPECT_FALSE(s.rw->Read(&m));
  EXPECT_EQ(s.rw->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(GatewayStreamTest, ANewConnectionReplacesTheOld) {
  EnrolledAgent agent = Enroll("h1");
  Stream first = Connect(agent, "h1");
  Stream second = Connect(agent, "h1");
  ServerMessage m;
  EXPECT_FALSE(first.rw->Read(&m));
  EXPECT_EQ(first.rw->Finish().error_code(), grpc::StatusCode::ABORTED);
  MachineAction action = Request(agent.device_id, "DiagnosticNoop");
  EXPECT_EQ(second.Read().action_request().action_id(), action.id);
}

TEST_F(GatewayStreamTest, IndicatorsReachTheAgentAndItsAckIsRecorded) {
  EnrolledAgent agent = Enroll("h1");
  ASSERT_TRUE(store_
                  ->PutIndicators({{.id = "ind-1",
                                    .type = IndicatorType::kIpAddress,
                                    .value = "192.0.2.0/24",
                                    .action = IndicatorAction::kWarn,
                                    .title = "t"}},
                                  {.actor = "tester"})
                  .ok());
  Stream s = Connect(agent, "h1");  // hello.indicator_version = 0: a snapshot is due
  // The session registers with the publisher right after sending Welcome.
  ASSERT_TRUE(Eventually([&] { return indicators_->Tracks(agent.device_id); }));
  ASSERT_TRUE(indicators_->PublishPending().ok());
  ServerMessage delta = s.Read();
  ASSERT_TRUE(delta.has_indicator_delta());
  EXPECT_TRUE(delta.indicator_delta().full());
  EXPECT_EQ(delta.indicator_delta().to_version(), 1u);
  ASSERT_EQ(delta.indicator_delta().upserts_size(), 1);
  EXPECT_EQ(delta.indicator_delta().upserts(0).value(), "192.0.2.0/24");
  EXPECT_EQ(delta.indicator_delta().upserts(0).action(), "Audit");  // Warn as agents see it

  AgentMessage ack;
  ack.mutable_indicator_ack()->set_version(1);
  ASSERT_TRUE(s.Write(ack));
  ASSERT_TRUE(Eventually([&] {
    auto recorded = store_->GetIndicatorAck(agent.device_id);
    return recorded.ok() && recorded->has_value() && (*recorded)->version == 1;
  }));
  // The stream is still up: a deletion arrives as a delta.
  ASSERT_TRUE(store_->DeleteIndicators({"ind-1"}, {.actor = "tester"}).ok());
  indicators_->Changed();
  ASSERT_TRUE(indicators_->PublishPending().ok());
  ServerMessage removal = s.Read();
  ASSERT_TRUE(removal.has_indicator_delta());
  EXPECT_FALSE(removal.indicator_delta().full());
  EXPECT_EQ(removal.indicator_delta().from_version(), 1u);
  ASSERT_EQ(removal.indicator_delta().removed_ids_size(), 1);
  EXPECT_EQ(removal.indicator_delta().removed_ids(0), "ind-1");
}

}  // namespace
}  // namespace quell::server
