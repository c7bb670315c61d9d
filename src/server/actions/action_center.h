// The action center: the one place where machine actions are created, moved through their
// lifecycle (action_lifecycle.h), cancelled and timed out. Every transition is written to
// the store — and to the audit log — before anyone is told about it.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/actions/action_catalog.h"
#include "server/actions/action_lifecycle.h"
#include "server/store/store.h"

namespace quell::server {

// The message of the conflict Create refuses with (two open actions of one conflict group).
inline constexpr char kActionInProgress[] = "Action is already in progress";

// Delivers actions to devices; implemented by the agent gateway. Calls must not block on
// the network: a device that is not connected simply gets its open actions when it
// connects (ActionCenter::OpenActionsFor).
class ActionDispatcher {
 public:
  virtual ~ActionDispatcher() = default;
  virtual void Deliver(const MachineAction& action) = 0;
  virtual void RequestCancel(const MachineAction& action) = 0;
};

struct ActionCenterOptions {
  // How long an action may stay Pending/InProgress before it is TimeOut. Defender retries
  // isolation of an offline device for three days; so do we, for every type.
  UnixMillis action_timeout_ms = 3LL * 24 * 3600 * 1000;
};

struct NewAction {
  std::string machine_id;
  const ActionTypeSpec* spec = nullptr;  // REQUIRES: not null
  ParsedActionBody body;
  std::string requestor;        // token name
  std::string request_source;   // "PublicApi"
  std::string undoes;           // id of the action this one reverses (audited), if any
};

struct AgentReport {
  std::string action_id;
  ActionEvent event = ActionEvent::kAgentStarted;
  std::string message;
  uint32_t progress_percent = 0;
  std::string result_json;      // empty = keep what is stored
};

class ActionCenter {
 public:
  ActionCenter(Store& store, const Clock& clock, ActionCenterOptions options = {});

  // Not owned; may be null (then actions wait for the device to connect).
  void SetDispatcher(ActionDispatcher* dispatcher);

  // Creates a Pending action and hands it to the dispatcher. NotFound for an unknown or
  // offboarded device; FailedPrecondition "Action is already in progress" when an open
  // action of the same conflict group exists on the device.
  Result<MachineAction> Create(const NewAction& request);

  // Offboards a device: marks it offboarded (its certificate is no longer accepted), and
  // records a MachineAction of type Offboard that is Succeeded at once, since the server
  // does it alone. Open actions of the device are cancelled. NotFound / FailedPrecondition
  // (already offboarded).
  Result<MachineAction> Offboard(const std::string& machine_id, const std::string& requestor,
                                 const std::string& comment);

  // Pending -> Cancelled at once; InProgress -> the agent is asked to stop and the action
  // becomes Cancelled when it confirms. NotFound / FailedPrecondition (already final).
  Result<MachineAction> Cancel(const std::string& action_id, const std::string& requestor,
                               const std::string& comment);

  // Creates the action that reverses a Succeeded one (its type's undo_type: Isolate ->
  // Unisolate, RestrictCodeExecution -> UnrestrictCodeExecution, StopAndQuarantineFile ->
  // RestoreQuarantinedFile). InvalidArgument when the type has no undo, the action is not
  // Succeeded, it was undone already, or a later action of its group has superseded it
  // (undoing an old isolation must not release a newer one). NotFound for an unknown id.
  Result<MachineAction> Undo(const std::string& action_id, const std::string& requestor,
                             const std::string& comment, const std::string& request_source);

  // Applies an update an agent sent about one of its actions. An update for an action of
  // another device is PermissionDenied; a late update for a final action is OK and ignored.
  Status ApplyAgentReport(const std::string& device_id, const AgentReport& report);

  // Moves every open action whose expiration time has passed to TimeOut. Returns the count.
  Result<size_t> ExpireOverdue();

  // Open actions of a device, oldest first — what to (re)deliver when it connects.
  Result<std::vector<MachineAction>> OpenActionsFor(const std::string& device_id);

 private:
  // Reads, transitions and writes one action, retrying if another writer moved it first.
  // `mutate` may adjust the record before it is written (fields beyond status).
  Result<MachineAction> Transition(const std::string& action_id, ActionEvent event,
                                   const std::string& actor, const std::string& comment,
                                   const std::function<void(MachineAction&)>& mutate);
  Status ApplyDeviceEffect(const MachineAction& action);

  Store& store_;
  const Clock& clock_;
  ActionCenterOptions options_;
  std::mutex create_mu_;  // makes the conflict check and the insert one step
  std::atomic<ActionDispatcher*> dispatcher_{nullptr};
};

}  // namespace quell::server
