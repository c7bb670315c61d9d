// One agent's Connect stream: authenticates the device certificate, records inventory and
// heartbeats, delivers actions and applies the agent's updates. Owned by gRPC: it deletes
// itself in OnDone.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "server/gateway/agent_gateway.h"

namespace quell::server {

class AgentSession final
    : public grpc::ServerBidiReactor<quell::v1::AgentMessage, quell::v1::ServerMessage>,
      public AgentStream {
 public:
  AgentSession(AgentGateway& gateway, grpc::CallbackServerContext* context);

  // grpc::ServerBidiReactor
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;
  void OnCancel() override;

  // AgentStream; called with the link's lock held.
  void Enqueue(quell::v1::ServerMessage message) override;
  void Terminate(int grpc_code, const std::string& reason) override;
  AgentBacklog Backlog() override;

 private:
  Status Handle(const quell::v1::AgentMessage& message);
  Status HandleHello(const quell::v1::Hello& hello);
  Status HandleUpdate(const quell::v1::ActionUpdate& update);
  Status HandleNotice(const quell::v1::Notice& notice);
  Status HandleDetection(const quell::v1::Detection& detection);
  Status HandleFileSightings(const quell::v1::FileSightings& sightings);
  Status HandleIndicatorAck(const quell::v1::IndicatorAck& ack);
  void Ack(uint64_t sequence);
  void Send(quell::v1::ServerMessage message);  // through the link, so ordering is kept
  void FinishOnce(grpc::Status status);

  AgentGateway& gateway_;
  std::string device_id_;
  std::shared_ptr<AgentLink> link_;
  bool hello_seen_ = false;
  quell::v1::AgentMessage incoming_;

  struct Outgoing {
    quell::v1::ServerMessage message;
    size_t bytes = 0;
  };
  std::mutex write_mu_;  // guards everything below
  std::deque<Outgoing> outgoing_;  // the front one is being written
  size_t outgoing_bytes_ = 0;
  bool write_in_flight_ = false;
  bool finished_ = false;
};

}  // namespace quell::server
