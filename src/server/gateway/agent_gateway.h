// The gRPC service agents talk to: Enroll (no client certificate) and Connect (mutual TLS
// with a device certificate issued by our CA). Built on gRPC's callback API, so an idle
// stream costs no thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/clock.h"
#include "quell/v1/agent.grpc.pb.h"
#include "server/actions/action_center.h"
#include "server/alerts/alert_service.h"
#include "server/gateway/presence.h"
#include "server/indicators/indicator_publisher.h"
#include "server/gateway/session_registry.h"
#include "server/pki/certificate_authority.h"
#include "server/store/store.h"

namespace quell::server {

// Where the output of interactive live response commands goes (the live response broker).
// Called on the device's gRPC stream thread, in the order the agent sent the messages: the
// implementation must not block (queue work instead). `device_id` is the authenticated
// device the message came from, so a sink checks it against the session it names.
class LiveOutputSink {
 public:
  virtual ~LiveOutputSink() = default;
  virtual void OnLiveOutput(const std::string& device_id, const quell::v1::LiveOutput& output) = 0;
};

struct AgentGatewayOptions {
  uint32_t heartbeat_interval_seconds = 30;  // told to agents in Welcome
  // Where detections go; nullptr: they are not acknowledged and stay spooled on the agents.
  AlertService* alerts = nullptr;
  // Keeps agents' indicators current (Hello, IndicatorAck); nullptr: no indicator sync.
  IndicatorPublisher* indicators = nullptr;
};

class AgentGateway final : public quell::v1::AgentGateway::CallbackService {
 public:
  AgentGateway(Store& store, const CertificateAuthority& ca, ActionCenter& actions,
               SessionRegistry& sessions, Presence& presence, const Clock& clock,
               AgentGatewayOptions options);

  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* context,
                                   const quell::v1::EnrollRequest* request,
                                   quell::v1::EnrollResponse* response) override;

  grpc::ServerBidiReactor<quell::v1::AgentMessage, quell::v1::ServerMessage>* Connect(
      grpc::CallbackServerContext* context) override;

  // The credentials the agent port must be served with: our server certificate, client
  // certificates requested and, when presented, verified against our CA.
  static std::shared_ptr<grpc::ServerCredentials> Credentials(const CertificateAuthority& ca);

  Store& store() { return store_; }
  ActionCenter& actions() { return actions_; }
  SessionRegistry& sessions() { return sessions_; }
  Presence& presence() { return presence_; }
  const Clock& clock() const { return clock_; }
  const AgentGatewayOptions& options() const { return options_; }

  // Not owned; nullptr (the default) drops live output. May be set while streams run; the
  // sink must outlive the gateway's streams or be reset to nullptr first.
  void SetLiveOutputSink(LiveOutputSink* sink) { live_output_.store(sink); }
  LiveOutputSink* live_output_sink() const { return live_output_.load(); }

 private:
  Store& store_;
  const CertificateAuthority& ca_;
  ActionCenter& actions_;
  SessionRegistry& sessions_;
  Presence& presence_;
  const Clock& clock_;
  AgentGatewayOptions options_;
  std::atomic<LiveOutputSink*> live_output_{nullptr};
};

// Device fields from the agent's inventory message.
Device InventoryToDevice(const quell::v1::Inventory& inventory);

}  // namespace quell::server
