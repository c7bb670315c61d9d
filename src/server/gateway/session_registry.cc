#include "server/gateway/session_registry.h"

#include <grpcpp/grpcpp.h>

namespace quell::server {

std::shared_ptr<AgentLink> SessionRegistry::Register(std::shared_ptr<AgentLink> link) {
  std::lock_guard lock(mu_);
  std::shared_ptr<AgentLink>& slot = links_[link->device_id()];
  std::shared_ptr<AgentLink> previous = std::move(slot);
  slot = std::move(link);
  return previous;
}

void SessionRegistry::Unregister(const std::shared_ptr<AgentLink>& link) {
  std::lock_guard lock(mu_);
  auto it = links_.find(link->device_id());
  if (it != links_.end() && it->second == link) links_.erase(it);
}

std::shared_ptr<AgentLink> SessionRegistry::Find(const std::string& device_id) const {
  std::lock_guard lock(mu_);
  auto it = links_.find(device_id);
  return it == links_.end() ? nullptr : it->second;
}

size_t SessionRegistry::ConnectedCount() const {
  std::lock_guard lock(mu_);
  return links_.size();
}

void SessionRegistry::Disconnect(const std::string& device_id, const std::string& reason) {
  if (auto link = Find(device_id)) link->Terminate(grpc::StatusCode::UNAUTHENTICATED, reason);
}

void SessionRegistry::Deliver(const MachineAction& action) {
  if (auto link = Find(action.machine_id)) link->Send(ToActionRequestMessage(action));
}

void SessionRegistry::RequestCancel(const MachineAction& action) {
  if (auto link = Find(action.machine_id)) link->Send(ToCancelActionMessage(action));
}

quell::v1::ServerMessage ToCancelActionMessage(const MachineAction& action) {
  quell::v1::ServerMessage message;
  message.mutable_cancel_action()->set_action_id(action.id);
  message.mutable_cancel_action()->set_comment(action.cancellation_comment);
  return message;
}

quell::v1::ServerMessage ToActionRequestMessage(const MachineAction& action) {
  quell::v1::ServerMessage message;
  auto* request = message.mutable_action_request();
  request->set_action_id(action.id);
  request->set_type(action.type);
  request->set_parameters_json(action.parameters_json);
  request->set_deadline_unix_ms(action.expiration_time);
  return message;
}

}  // namespace quell::server
