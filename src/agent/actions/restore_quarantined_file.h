// RestoreQuarantinedFile: undoes a StopAndQuarantineFile action — its files come back
// byte-for-byte with path, owner, mode, times and xattrs, every persistence entry it removed
// is put back, and the hash is no longer blocked. See FileQuarantine::Restore.
#pragma once

#include "agent/actions/action.h"
#include "agent/quarantine/file_quarantine.h"

namespace quell::agent {

class RestoreQuarantinedFileAction final : public Action {
 public:
  // `quarantine` must outlive the action.
  explicit RestoreQuarantinedFileAction(quarantine::FileQuarantine& quarantine)
      : quarantine_(quarantine) {}

  const ActionSpec& Spec() const override;
  // Parameters: {"QuarantineActionId": "<StopAndQuarantineFile action id>"} or
  // {"Sha256": 64 hex} (every quarantine of that hash); "Comment" tolerated.
  Status Validate(const nlohmann::json& parameters) const override;
  // Fails with AlreadyExists (and changes nothing) when a different file now occupies a
  // quarantined file's path; NotFound for an unknown id or hash. Idempotent.
  Result<nlohmann::json> Run(ActionContext& ctx) override;

 private:
  quarantine::FileQuarantine& quarantine_;
};

}  // namespace quell::agent
