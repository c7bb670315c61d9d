#include "agent/actions/action_registry.h"

#include <cassert>

namespace quell::agent {

void ActionRegistry::Register(std::unique_ptr<Action> action) {
  const ActionSpec& spec = action->Spec();
  assert(!by_type_.contains(spec.type));
  by_type_[spec.type] = Target{action.get(), false};
  if (!spec.undo_type.empty()) {
    assert(!by_type_.contains(spec.undo_type));
    by_type_[spec.undo_type] = Target{action.get(), true};
  }
  actions_.push_back(std::move(action));
}

Result<ActionRegistry::Target> ActionRegistry::Find(const std::string& type) const {
  auto it = by_type_.find(type);
  if (it == by_type_.end()) return NotFound("this agent does not support action type " + type);
  return it->second;
}

std::vector<const ActionSpec*> ActionRegistry::Specs() const {
  std::vector<const ActionSpec*> out;
  for (const auto& a : actions_) out.push_back(&a->Spec());
  return out;
}

}  // namespace quell::agent
