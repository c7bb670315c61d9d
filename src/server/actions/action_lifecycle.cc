#include "server/actions/action_lifecycle.h"

#include <string>

namespace quell::server {

Result<Transition> NextStatus(ActionStatus from, ActionEvent event) {
  if (IsFinal(from)) {
    if (event == ActionEvent::kUserCancelled) {
      return FailedPrecondition("action is already " + std::string(ActionStatusName(from)) +
                                " and cannot be cancelled");
    }
    return Transition{from, false};
  }
  switch (event) {
    case ActionEvent::kAgentStarted:
      return Transition{ActionStatus::kInProgress, from != ActionStatus::kInProgress};
    case ActionEvent::kAgentSucceeded:
      return Transition{ActionStatus::kSucceeded, true};
    case ActionEvent::kAgentFailed:
      return Transition{ActionStatus::kFailed, true};
    case ActionEvent::kAgentCancelled:
      return Transition{ActionStatus::kCancelled, true};
    case ActionEvent::kUserCancelled:
      // Pending: nothing ran yet, cancel at once. InProgress: wait for the agent.
      if (from == ActionStatus::kPending) return Transition{ActionStatus::kCancelled, true};
      return Transition{from, false};
    case ActionEvent::kExpired:
      return Transition{ActionStatus::kTimeOut, true};
  }
  return Internal("unknown action event");
}

}  // namespace quell::server
