// Maps MachineAction types to the actions that carry them out. An action is reachable by its
// own type (Run) and by its undo type (Undo).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/actions/action.h"

namespace quell::agent {

class ActionRegistry {
 public:
  // REQUIRES: neither the type nor the undo type is registered already.
  void Register(std::unique_ptr<Action> action);

  struct Target {
    Action* action = nullptr;
    bool undo = false;
  };
  // NotFound for a type nobody registered.
  Result<Target> Find(const std::string& type) const;

  std::vector<const ActionSpec*> Specs() const;

 private:
  std::vector<std::unique_ptr<Action>> actions_;
  std::map<std::string, Target, std::less<>> by_type_;
};

}  // namespace quell::agent
