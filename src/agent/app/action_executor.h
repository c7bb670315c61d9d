// Runs the actions the server asks for, each on its own thread, and reports their progress
// and results through a MessageSink.
//
// Per request: a redelivered id is never run twice (finished -> its final update is sent
// again; running -> ignored; started before a crash -> run again, actions being idempotent);
// an expired deadline, an unknown type or invalid parameters end the action FAILED with the
// reason, without running it. A running action sees Cancel() through its stop_token.
// Final updates are journaled, then sent durably (spooled); progress is sent best effort.
//
// Thread-safe; refusals are sent while mu_ is held, so the MessageSink must not call back into
// the executor. The destructor interrupts running actions (without reporting them: they run
// again when the server redelivers them after the restart) and joins their threads.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/actions/action_registry.h"
#include "agent/channel/message_sink.h"
#include "agent/state/action_journal.h"
#include "common/clock.h"
#include "quell/v1/agent.pb.h"

namespace quell::agent {

class ActionExecutor {
 public:
  // Every collaborator must outlive the executor.
  ActionExecutor(const ActionRegistry& registry, ActionJournal& journal, MessageSink& sink,
                 const Clock& clock);
  ~ActionExecutor();

  ActionExecutor(const ActionExecutor&) = delete;
  ActionExecutor& operator=(const ActionExecutor&) = delete;

  // Starts the action, or answers at once when it must not run. Returns without waiting.
  void Submit(const quell::v1::ActionRequest& request);

  // Asks a running action to stop; it ends CANCELLED unless it had already finished its work.
  // An id that is not running is ignored.
  void Cancel(const std::string& action_id);

  // Ids of the actions running now (for Hello).
  std::vector<std::string> RunningIds();

  // Blocks until no action is running.
  void WaitIdle();

 private:
  struct Run {
    std::jthread thread;
    bool done = false;       // guarded by mu_
    bool cancelled = false;  // guarded by mu_: Cancel() was called (not a shutdown)
  };

  void Execute(const quell::v1::ActionRequest& request, const ActionRegistry::Target& target,
               nlohmann::json parameters, std::stop_token stop);
  // Journals the final update and sends it durably.
  void Finish(const quell::v1::ActionRequest& request, quell::v1::ActionState state,
              const std::string& message, const std::string& result_json);
  void SendProgress(const std::string& action_id, uint32_t percent, const std::string& message);
  // Removes finished runs from runs_ and returns them, to be joined outside the lock.
  std::vector<std::unique_ptr<Run>> TakeDoneLocked();

  const ActionRegistry& registry_;
  ActionJournal& journal_;
  MessageSink& sink_;
  const Clock& clock_;

  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::map<std::string, std::unique_ptr<Run>> runs_;
};

}  // namespace quell::agent
