// StopAndQuarantineFile: finds the file(s) with a hash, kills the processes running them (and
// their descendants), removes the persistence that starts them and moves them into the
// agent's encrypted quarantine, as one journaled operation (see FileQuarantine). Undone by the
// separate RestoreQuarantinedFile action, which names this action's id (QuarantineActionId):
// the registry maps one type per action, so undo_type is left empty here.
#pragma once

#include "agent/actions/action.h"
#include "agent/quarantine/file_quarantine.h"

namespace quell::agent {

class StopAndQuarantineFileAction final : public Action {
 public:
  // `quarantine` must outlive the action.
  explicit StopAndQuarantineFileAction(quarantine::FileQuarantine& quarantine)
      : quarantine_(quarantine) {}

  const ActionSpec& Spec() const override;
  // Parameters: exactly one of {"Sha1": 40 hex} or {"Sha256": 64 hex}; optional "Path" (an
  // absolute path where the file is known to be, searched first); "Comment" tolerated.
  Status Validate(const nlohmann::json& parameters) const override;
  // Result: {"quarantineActionId", "sha256", "filesQuarantined": [{path, sha256, sha1, md5,
  // size, vaultId}], "processesKilled": [{pid, exe, reason, file}], "persistenceRemoved":
  // [{kind, location, detail}]}. Fails (NotFound) with the places searched when no file has
  // the hash. Idempotent by action id.
  Result<nlohmann::json> Run(ActionContext& ctx) override;

 private:
  quarantine::FileQuarantine& quarantine_;
};

}  // namespace quell::agent
