// The interface every response action on the agent implements. One action per file in this
// directory, registered by one line in RegisterBuiltinActions (builtin_actions.cc).
//
// An action receives its collaborators (firewall, state, ...) through its constructor and
// per-run input through ActionContext, so its logic is unit-tested with fakes.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <stop_token>
#include <string>

#include "common/status.h"

namespace quell::agent {

// How an action describes itself; listed by the agent at start and in docs.
struct ActionSpec {
  std::string type;         // MachineAction.type that runs it, e.g. "Isolate"
  std::string undo_type;    // MachineAction.type that undoes it, e.g. "Unisolate"; empty if none
  std::string description;
  std::string risk;         // "low" | "medium" | "high": what an operator should weigh
  nlohmann::json parameters_schema = nlohmann::json::object();  // JSON Schema of parameters
};

struct ActionContext {
  std::string action_id;
  nlohmann::json parameters = nlohmann::json::object();
  // Reports progress (0..100) with a short message; safe to call from the running thread.
  std::function<void(uint32_t percent, const std::string& message)> report_progress =
      [](uint32_t, const std::string&) {};
  // Requested when the action is cancelled; long-running actions check it between steps.
  std::stop_token stop;
  // What a failed or cancelled run reports besides its message (e.g. the per-command statuses
  // of a live response); null: nothing.
  nlohmann::json failure_result;
};

class Action {
 public:
  virtual ~Action() = default;

  virtual const ActionSpec& Spec() const = 0;

  // Checks parameters before anything runs; InvalidArgument explains what is wrong.
  virtual Status Validate(const nlohmann::json& parameters) const = 0;

  // Does the action. Returns the result object reported to the server, or why it failed.
  // Must be idempotent: running an action whose effect is already in place succeeds.
  virtual Result<nlohmann::json> Run(ActionContext& ctx) = 0;

  // Reverses Run. Only called when Spec().undo_type is not empty.
  virtual Result<nlohmann::json> Undo(ActionContext& ctx) {
    (void)ctx;
    return FailedPrecondition(Spec().type + " cannot be undone");
  }
};

}  // namespace quell::agent
