// What the agent has done with each action id, so that an action redelivered by the server
// (after a reconnect, or a server restart) is never run twice:
//   finished -> its final update is sent again, the action is not run;
//   started, no final, not running now (the agent crashed mid-run) -> it runs again
//   (actions are idempotent, so finishing an interrupted run is safe).
// One small JSON file per action id in `dir`, written atomically. Thread-safe (each call
// touches only its own file).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "quell/v1/agent.pb.h"

namespace quell::agent {

class ActionJournal {
 public:
  // Opens (creating it 0700 if needed) the journal in `dir`.
  static Result<std::unique_ptr<ActionJournal>> Open(std::string dir, const Clock& clock);

  enum class State { kUnknown, kStarted, kFinished };
  struct Record {
    State state = State::kUnknown;
    std::string type;
    std::optional<quell::v1::ActionUpdate> final_update;  // set when kFinished
  };

  // kUnknown for an id never seen. InvalidArgument for an id that is not a safe file name
  // (letters, digits, '-', '_', at most 128 characters).
  Result<Record> Lookup(const std::string& action_id) const;

  Status MarkStarted(const std::string& action_id, const std::string& type);
  // REQUIRES: `final_update` is in a final state.
  Status MarkFinished(const std::string& action_id, const std::string& type,
                      const quell::v1::ActionUpdate& final_update);

  // Forgets actions finished before `cutoff`. The server redelivers an action only until it
  // has acknowledged the final update, so entries older than that window are dead weight.
  Status PruneFinishedBefore(UnixMillis cutoff);

 private:
  ActionJournal(std::string dir, const Clock& clock) : dir_(std::move(dir)), clock_(clock) {}
  Result<std::string> PathOf(const std::string& action_id) const;

  const std::string dir_;
  const Clock& clock_;
};

// True for ids that can name a file: [A-Za-z0-9_-]{1,128}.
bool IsSafeActionId(const std::string& action_id);

}  // namespace quell::agent
