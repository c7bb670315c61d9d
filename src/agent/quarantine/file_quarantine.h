// FileQuarantine: stop-and-quarantine a file by hash, and its undo, as one recorded,
// crash-safe operation.
//
// StopAndQuarantine(request):
//   1. finds the file(s) with the hash: the path hint, running processes' executables,
//      paths named by persistence entries, the quick-scan locations;
//      nothing found -> NotFound with the places looked at (the action fails);
//      unmodified files of Debian packages (MD5 as dpkg recorded it) and the agent's own binary
//      are never taken (listed as skipped; only such files -> FailedPrecondition), so a hash
//      shared with /bin/sh cannot take the host's shell or kill every shell on it;
//   2. plans: persistence entries pointing at each file (exact records), systemd units;
//   3. writes the journal <state>/quarantine/ops/<id>.json (intent: hash, files, entries)
//      and adds the hash to the blocked set (the exec gate denies it from here on);
//   4. stops/disables system units (if use_systemctl), removes each persistence entry;
//   5. kills processes running the files and their descendants;
//   6. copies each file into the vault (encrypted, fsynced) BEFORE unlinking it;
//   7. kills again (anything respawned meanwhile), marks the operation done.
// The journal is rewritten (atomically) after every step. Every step is idempotent, so after
// a crash Open() re-runs interrupted operations to completion; if an operation cannot
// complete (e.g. the file changed), it is rolled back: persistence put back, the file
// restored from the vault if it was already unlinked. The file is never lost: it is unlinked
// only once its vault copy is complete and fsynced.
//
// Restore(id) undoes a done operation: files back byte-for-byte (path, owner, mode, times,
// xattrs), every persistence entry back, units reloaded/started as they were; the hash
// leaves the blocked set. Also journaled and resumed after a crash.
//
// Thread-safety: all public methods are thread-safe (operations are serialized).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/quarantine/persistence.h"
#include "agent/quarantine/process_tree.h"
#include "agent/quarantine/quarantine_vault.h"
#include "agent/quarantine/quarantined_hashes.h"
#include "common/status.h"

namespace quell::agent::quarantine {

struct QuarantineSettings {
  std::string state_dir;         // the vault and the journal live in <state_dir>/quarantine
  std::string root = "/";        // files and persistence are looked up under it
  std::string proc_root = "/proc";
  bool use_systemctl = true;     // see PersistenceOptions::use_systemctl
  bool search_quick_scan_locations = true;  // candidates from scan::QuickScanTargets
  uint64_t max_file_bytes = 1ull << 30;     // larger candidates are not hashed
};

// Collaborators replaced in tests.
struct QuarantineHooks {
  CommandRunner run_command = RunCommand;
  std::shared_ptr<ProcessSignaller> signaller;  // nullptr: PidfdSignaller(proc_root)
  pid_t self_pid = 0;                           // 0: getpid()
  // Called after each step (action done, or journal written) with its name, e.g.
  // "journal:intent", "persistence:0", "journal:stored:0". Tests end the process here to
  // simulate a crash.
  std::function<void(const std::string& step)> after_step;
  // Called (with no lock held) whenever the set of quarantined hashes may have changed, so the
  // exec gate can be opened before the file is even touched and closed after a restore.
  std::function<void()> on_blocked_changed;
};

struct QuarantineRequest {
  std::string id;         // the operation id (the action id); [A-Za-z0-9_-]{1,128}
  std::string sha256;     // one of sha256 / sha1, hex, either case
  std::string sha1;
  std::string path_hint;  // host path to look at first; optional
};

class FileQuarantine final : public QuarantinedHashes {
 public:
  // Opens the vault and the journal, loads the blocked hashes, then completes or rolls back
  // operations a crash interrupted.
  static Result<std::unique_ptr<FileQuarantine>> Open(QuarantineSettings settings,
                                                      QuarantineHooks hooks = {});

  // Returns the result object: {"quarantineActionId", "sha256", "filesQuarantined": [{path,
  // sha256, sha1, md5, size, vaultId}], "processesKilled": [{pid, exe, reason}],
  // "persistenceRemoved": [{kind, location, detail}]}. Idempotent by request.id: a done
  // operation returns its result again.
  Result<nlohmann::json> StopAndQuarantine(const QuarantineRequest& request);

  // Undoes operation `id`. Returns {"quarantineActionId", "filesRestored": [...],
  // "persistenceRestored": [...]}. NotFound for an unknown id; FailedPrecondition if the
  // operation did not complete; AlreadyExists (nothing changed) if a different file now
  // occupies a quarantined file's path.
  Result<nlohmann::json> Restore(const std::string& id);
  // Undoes every done operation of this hash. NotFound if there is none.
  Result<nlohmann::json> RestoreBySha256(const std::string& sha256);

  // The stored record of operation `id` (as in the journal), for tests and diagnostics.
  Result<nlohmann::json> Record(const std::string& id) const;

  bool Contains(std::string_view sha256) const override;
  std::vector<std::string> Sha256s() const override;

  // Operations recovered by Open: "<id>: completed" / "<id>: rolled back: reason".
  const std::vector<std::string>& recovered() const { return recovered_; }

 private:
  FileQuarantine(QuarantineSettings settings, QuarantineHooks hooks,
                 std::unique_ptr<QuarantineVault> vault);

  struct Candidate;
  Result<std::vector<Candidate>> FindFiles(const QuarantineRequest& request, std::string& searched);
  Status Save(const nlohmann::json& op);
  Result<nlohmann::json> Load(const std::string& id) const;
  void Step(const std::string& name);
  Status Execute(nlohmann::json& op);         // steps 4..7, idempotent
  Status RollBack(nlohmann::json& op, const std::string& reason);
  Status ExecuteRestore(nlohmann::json& op);  // idempotent
  Result<nlohmann::json> RestoreLocked(const std::string& id);
  void RecomputeBlocked();
  PersistenceOptions PersistenceOpts() const;
  std::string OpsDir() const;

  const QuarantineSettings settings_;
  QuarantineHooks hooks_;
  std::unique_ptr<QuarantineVault> vault_;
  std::mutex op_mu_;  // one operation at a time
  mutable std::shared_mutex blocked_mu_;
  std::set<std::string> blocked_;
  std::vector<std::string> recovered_;
};

}  // namespace quell::agent::quarantine
