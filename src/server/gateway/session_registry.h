// Which devices are connected right now, and the dispatcher that sends them actions.
// One live stream per device: a new connection replaces the old one.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "server/actions/action_center.h"
#include "server/gateway/agent_link.h"

namespace quell::server {

class SessionRegistry final : public ActionDispatcher {
 public:
  // Registers `link` for its device and returns the link it replaced, if any (the caller
  // terminates it, outside the registry's lock).
  std::shared_ptr<AgentLink> Register(std::shared_ptr<AgentLink> link);
  // Removes `link` if it is still the registered one for its device.
  void Unregister(const std::shared_ptr<AgentLink>& link);
  std::shared_ptr<AgentLink> Find(const std::string& device_id) const;
  size_t ConnectedCount() const;

  // Ends the device's stream (offboarding).
  void Disconnect(const std::string& device_id, const std::string& reason);

  // ActionDispatcher.
  void Deliver(const MachineAction& action) override;
  void RequestCancel(const MachineAction& action) override;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<AgentLink>, std::less<>> links_;
};

// The wire form of an action request.
quell::v1::ServerMessage ToActionRequestMessage(const MachineAction& action);
// The wire form of a cancellation request for a running action.
quell::v1::ServerMessage ToCancelActionMessage(const MachineAction& action);

}  // namespace quell::server
