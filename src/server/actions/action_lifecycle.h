// The lifecycle every machine action follows, as a pure transition function:
//
//   Pending ──start──> InProgress ──succeed──> Succeeded
//      │                   │ ├──────fail─────> Failed
//      │                   │ ├─────expire────> TimeOut
//      │                   │ └─agent cancels─> Cancelled
//      ├──succeed/fail (an agent may report the end without a progress update first)
//      ├──cancel──> Cancelled   (not yet started: nothing to undo on the device)
//      └──expire──> TimeOut     (device offline for the whole window)
//
// A cancel request on an InProgress action is sent to the agent; the action becomes
// Cancelled only when the agent confirms, because the effect may already be in place.
// Final states never change again: a late or redelivered update is ignored, which is what
// makes updates idempotent.
#pragma once

#include "common/status.h"
#include "server/store/store.h"

namespace quell::server {

enum class ActionEvent {
  kAgentStarted,    // agent reported IN_PROGRESS
  kAgentSucceeded,
  kAgentFailed,
  kAgentCancelled,  // agent stopped the action after a cancel request
  kUserCancelled,   // a person or automation asked to cancel
  kExpired,         // the action's expiration time passed
};

struct Transition {
  ActionStatus to;
  bool changed;  // false when the event leaves the status as it is (e.g. repeated start)
};

// The status after `event`, or FailedPrecondition when the event is not allowed from
// `from` (e.g. cancelling a Succeeded action). Events on a final action other than
// kUserCancelled return {from, false}: late agent updates are dropped, not errors.
Result<Transition> NextStatus(ActionStatus from, ActionEvent event);

}  // namespace quell::server
