#include "server/actions/action_center.h"

#include "common/ids.h"
#include "server/actions/file_collection.h"
#include "common/logging.h"

namespace quell::server {
namespace {

std::string_view EventName(ActionEvent e) {
  switch (e) {
    case ActionEvent::kAgentStarted: return "started";
    case ActionEvent::kAgentSucceeded: return "succeeded";
    case ActionEvent::kAgentFailed: return "failed";
    case ActionEvent::kAgentCancelled: return "cancelled by agent";
    case ActionEvent::kUserCancelled: return "cancel requested";
    case ActionEvent::kExpired: return "expired";
  }
  return "unknown";
}

}  // namespace

ActionCenter::ActionCenter(Store& store, const Clock& clock, ActionCenterOptions options)
    : store_(store), clock_(clock), options_(options) {}

void ActionCenter::SetDispatcher(ActionDispatcher* dispatcher) { dispatcher_ = dispatcher; }

Result<MachineAction> ActionCenter::Create(const NewAction& request) {
  QUELL_ASSIGN_OR_RETURN(Device device, store_.GetDevice(request.machine_id));
  if (device.offboarded) return NotFound("machine " + request.machine_id + " is offboarded");

  MachineAction action;
  action.id = NewUuid();
  action.type = request.spec->type;
  action.scope = request.body.scope;
  action.title = request.spec->title;
  action.requestor = request.requestor;
  action.requestor_comment = request.body.comment;
  action.external_id = request.body.external_id;
  action.request_source = request.request_source;
  action.status = ActionStatus::kPending;
  action.machine_id = device.id;
  action.computer_dns_name = device.computer_dns_name;
  action.creation_time = clock_.Now();
  action.last_update_time = action.creation_time;
  action.expiration_time = action.creation_time + options_.action_timeout_ms;
  action.parameters_json = request.body.agent_parameters.dump();
  {
    std::lock_guard lock(create_mu_);
    if (!request.spec->conflict_group.empty()) {
      QUELL_ASSIGN_OR_RETURN(std::vector<MachineAction> open, store_.ListOpenActions(device.id));
      for (const MachineAction& other : open) {
        const ActionTypeSpec* other_spec = FindActionType(other.type);
        if (other_spec != nullptr && other_spec->conflict_group == request.spec->conflict_group) {
          return FailedPrecondition(kActionInProgress);
        }
      }
    }
    AuditEntry audit{.time = action.creation_time,
                     .actor = action.requestor,
                     .operation = "action.created",
                     .target = action.id,
                     .comment = action.requestor_comment,
                     .details_json = nlohmann::json{{"type", action.type},
                                                    {"scope", action.scope},
                                                    {"machineId", action.machine_id},
                                                    {"source", action.request_source}}
                                         .dump()};
    if (!request.undoes.empty()) {
      audit.operation = "action.undo";
      nlohmann::json details = nlohmann::json::parse(audit.details_json);
      details["undoes"] = request.undoes;
      audit.details_json = details.dump();
    }
    QUELL_RETURN_IF_ERROR(store_.InsertAction(action, &audit));
  }
  Logger("server.actions")
      ->info("action={} device={} type={} created by {}", action.id, action.machine_id,
             action.type, action.requestor);
  if (ActionDispatcher* d = dispatcher_.load()) d->Deliver(action);
  return action;
}

Result<MachineAction> ActionCenter::Offboard(const std::string& machine_id,
                                             const std::string& requestor,
                                             const std::string& comment) {
  QUELL_ASSIGN_OR_RETURN(Device device, store_.GetDevice(machine_id));
  if (device.offboarded) return FailedPrecondition("machine " + machine_id + " is offboarded");
  device.offboarded = true;
  QUELL_RETURN_IF_ERROR(store_.UpdateDevice(device));

  MachineAction action;
  action.id = NewUuid();
  action.type = "Offboard";
  action.title = "Offboard device";
  action.requestor = requestor;
  action.requestor_comment = comment;
  action.request_source = "PublicApi";
  action.status = ActionStatus::kSucceeded;
  action.machine_id = device.id;
  action.computer_dns_name = device.computer_dns_name;
  action.creation_time = clock_.Now();
  action.last_update_time = action.creation_time;
  action.expiration_time = action.creation_time;
  action.status_message = "device certificate " + device.cert_serial_hex + " revoked";
  AuditEntry audit{
      .time = action.creation_time,
      .actor = requestor,
      .operation = "device.offboarded",
      .target = device.id,
      .comment = comment,
      .details_json =
          nlohmann::json{{"certificateSerial", device.cert_serial_hex}, {"action", action.id}}
              .dump()};
  QUELL_RETURN_IF_ERROR(store_.InsertAction(action, &audit));
  QUELL_ASSIGN_OR_RETURN(std::vector<MachineAction> open, store_.ListOpenActions(device.id));
  for (const MachineAction& other : open) {
    Result<MachineAction> cancelled = Cancel(other.id, "system", "device offboarded");
    (void)cancelled;  // an InProgress action can no longer report; it will time out
  }
  Logger("server.actions")->info("device={} offboarded by {}", device.id, requestor);
  return action;
}

Result<MachineAction> ActionCenter::Cancel(const std::string& action_id,
                                           const std::string& requestor,
                                           const std::string& comment) {
  QUELL_ASSIGN_OR_RETURN(
      MachineAction action,
      Transition(action_id, ActionEvent::kUserCancelled, requestor, comment,
                 [&](MachineAction& a) {
                   a.cancellation_requestor = requestor;
                   a.cancellation_comment = comment;
                   a.cancellation_time = clock_.Now();
                 }));
  if (action.status == ActionStatus::kInProgress) {
    if (ActionDispatcher* d = dispatcher_.load()) d->RequestCancel(action);
  }
  return action;
}

Result<MachineAction> ActionCenter::Undo(const std::string& action_id,
                                         const std::string& requestor,
                                         const std::string& comment,
                                         const std::string& request_source) {
  QUELL_ASSIGN_OR_RETURN(MachineAction original, store_.GetAction(action_id));
  const ActionTypeSpec* spec = FindActionType(original.type);
  if (spec == nullptr || spec->undo_type.empty()) {
    return InvalidArgument("a " + original.type + " action cannot be undone");
  }
  if (original.status != ActionStatus::kSucceeded) {
    return InvalidArgument("only a Succeeded action can be undone; action " + original.id +
                           " is " + std::string(ActionStatusName(original.status)));
  }
  const ActionTypeSpec* undo_spec = FindActionType(spec->undo_type);
  if (undo_spec == nullptr) return Internal("undo type " + spec->undo_type + " is not known");

  // Later actions on the device that undid or superseded this one. Failed, cancelled and
  // timed-out ones changed nothing and do not count.
  QUELL_ASSIGN_OR_RETURN(std::vector<MachineAction> actions,
                         store_.ListActions({.machine_id = original.machine_id}));
  for (const MachineAction& later : actions) {
    if (later.id == original.id || later.creation_time < original.creation_time) continue;
    if (later.status == ActionStatus::kFailed || later.status == ActionStatus::kCancelled ||
        later.status == ActionStatus::kTimeOut) {
      continue;
    }
    const ActionTypeSpec* later_spec = FindActionType(later.type);
    if (later_spec == nullptr) continue;
    if (!spec->conflict_group.empty() && later_spec->conflict_group == spec->conflict_group) {
      return InvalidArgument("action " + original.id + " was already undone or superseded by " +
                             later.type + " action " + later.id);
    }
    if (later.type == undo_spec->type && !spec->undo_reference_parameter.empty()) {
      auto params = nlohmann::json::parse(later.parameters_json, nullptr, false);
      if (params.is_object() && params.value(spec->undo_reference_parameter, "") == original.id) {
        return InvalidArgument("action " + original.id + " was already undone by action " +
                               later.id);
      }
    }
  }

  ParsedActionBody body{.comment = comment};
  if (!spec->undo_reference_parameter.empty()) {
    body.agent_parameters = {{spec->undo_reference_parameter, original.id}};
  }
  return Create({.machine_id = original.machine_id,
                 .spec = undo_spec,
                 .body = body,
                 .requestor = requestor,
                 .request_source = request_source,
                 .undoes = original.id});
}

Status ActionCenter::ApplyAgentReport(const std::string& device_id, const AgentReport& report) {
  QUELL_ASSIGN_OR_RETURN(MachineAction current, store_.GetAction(report.action_id));
  if (current.machine_id != device_id) {
    return PermissionDenied("action " + report.action_id + " does not belong to this device");
  }
  QUELL_ASSIGN_OR_RETURN(
      MachineAction updated,
      Transition(report.action_id, report.event, "agent:" + device_id, report.message,
                 [&](MachineAction& a) {
                   if (!report.message.empty()) a.status_message = report.message;
                   a.progress_percent = report.progress_percent;
                   if (!report.result_json.empty()) a.result_json = report.result_json;
                 }));
  if (updated.status == ActionStatus::kSucceeded) return ApplyDeviceEffect(updated);
  return Status::Ok();
}

Result<size_t> ActionCenter::ExpireOverdue() {
  QUELL_ASSIGN_OR_RETURN(std::vector<MachineAction> overdue,
                         store_.ListExpiredActions(clock_.Now()));
  size_t count = 0;
  for (const MachineAction& action : overdue) {
    Result<MachineAction> r =
        Transition(action.id, ActionEvent::kExpired, "system",
                   "not completed within the action timeout", [](MachineAction& a) {
                     a.status_message = "The device did not complete the action in time";
                   });
    if (r.ok() && r->status == ActionStatus::kTimeOut) ++count;
  }
  return count;
}

Result<std::vector<MachineAction>> ActionCenter::OpenActionsFor(const std::string& device_id) {
  return store_.ListOpenActions(device_id);
}

Result<MachineAction> ActionCenter::Transition(
    const std::string& action_id, ActionEvent event, const std::string& actor,
    const std::string& comment, const std::function<void(MachineAction&)>& mutate) {
  // Optimistic concurrency: the store writes only if nobody moved the action in between.
  constexpr int kAttempts = 5;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    QUELL_ASSIGN_OR_RETURN(MachineAction action, store_.GetAction(action_id));
    QUELL_ASSIGN_OR_RETURN(struct Transition t, NextStatus(action.status, event));
    bool is_progress_only = !t.changed && !IsFinal(action.status);
    if (!t.changed && !is_progress_only) return action;  // late update on a final action
    ActionStatus expected = action.status;
    action.status = t.to;
    action.last_update_time = clock_.Now();
    mutate(action);
    // Progress-only updates are not audited; every transition and cancel request is, in
    // the same transaction as the action itself.
    std::optional<AuditEntry> audit;
    if (t.changed || event == ActionEvent::kUserCancelled) {
      audit = AuditEntry{.time = action.last_update_time,
                         .actor = actor,
                         .operation = "action.transition",
                         .target = action.id,
                         .comment = comment,
                         .details_json = nlohmann::json{{"event", EventName(event)},
                                                        {"from", ActionStatusName(expected)},
                                                        {"to", ActionStatusName(action.status)}}
                                             .dump()};
    }
    Status written = store_.UpdateAction(action, expected, audit ? &*audit : nullptr);
    if (written.code() == StatusCode::kFailedPrecondition) continue;  // lost a race; re-read
    QUELL_RETURN_IF_ERROR(written);
    if (audit) {
      Logger("server.actions")
          ->info("action={} device={} type={} {} -> {} ({})", action.id, action.machine_id,
                 action.type, ActionStatusName(expected), ActionStatusName(action.status),
                 EventName(event));
    }
    return action;
  }
  return Unavailable("action " + action_id + " is being changed concurrently; try again");
}

Status ActionCenter::ApplyDeviceEffect(const MachineAction& action) {
  if (action.type == "CollectFile") return RecordCollectedFile(store_, action);
  std::optional<IsolationState> isolation;
  if (action.type == "Isolate") {
    isolation = action.scope == "Selective" ? IsolationState::kSelective : IsolationState::kFull;
  } else if (action.type == "Unisolate") {
    isolation = IsolationState::kNotIsolated;
  }
  if (!isolation) return Status::Ok();
  QUELL_ASSIGN_OR_RETURN(Device device, store_.GetDevice(action.machine_id));
  device.isolation = *isolation;
  return store_.UpdateDevice(device);
}

}  // namespace quell::server
