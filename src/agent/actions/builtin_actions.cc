#include "agent/actions/builtin_actions.h"

#include <memory>

#include "agent/actions/diagnostic_noop.h"
#include "agent/actions/isolate.h"

namespace quell::agent {

void RegisterBuiltinActions(ActionRegistry& registry, const BuiltinActionDeps& deps) {
  registry.Register(std::make_unique<DiagnosticNoopAction>());
  if (deps.isolation != nullptr) registry.Register(std::make_unique<IsolateAction>(*deps.isolation));
}

}  // namespace quell::agent
