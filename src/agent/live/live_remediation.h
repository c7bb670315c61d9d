// What `remediate` and `undo` of an interactive live response session do, and the journal that
// lets `undo` put back exactly what was removed, also after the agent restarted.
//
//   file <path>      FileQuarantine::StopAndQuarantine by the file's SHA-256 (path as hint):
//                    the file goes to the vault, processes running it are killed, persistence
//                    naming it is removed; undo = FileQuarantine::Restore.
//   process <pid>    the process's exe, command line and user are recorded, then SIGKILL
//                    (through a pidfd checked against its start time); undo refuses.
//   service <unit>   the unit file and its enable/alias symlinks are removed as exact
//                    PersistenceChange records (systemctl stop before and daemon-reload after
//                    only with PersistenceOptions.use_systemctl); undo = RestorePersistence
//                    (and start again if it was active).
//   cron <target>    every cron line naming <target> (FindPersistence, kind "cron") removed;
//                    undo = RestorePersistence (byte-for-byte, times included).
//
// The journal (<work_dir>/kept/remediations.json, written atomically before and after each
// change) holds {"next": n, "remediations": [record...]}; ids are "r1", "r2", ... per device.
// Thread-safe: operations are serialized.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/quarantine/file_quarantine.h"
#include "agent/quarantine/persistence.h"
#include "common/clock.h"
#include "common/status.h"

namespace quell::agent::live {

struct RemediationOptions {
  std::string journal_path;  // <work_dir>/kept/remediations.json
  // root (host paths are looked up under it), use_systemctl, run_command.
  quarantine::PersistenceOptions persistence;
  std::string proc_root = "/proc";
  // nullptr: `remediate file` is refused (the quarantine could not be opened).
  quarantine::FileQuarantine* quarantine = nullptr;
  pid_t self_pid = 0;  // 0: getpid(); never killed
  const Clock* clock = &SystemClock::Instance();
};

class LiveRemediation {
 public:
  // Loads the journal (a missing file is an empty journal).
  static Result<std::unique_ptr<LiveRemediation>> Open(RemediationOptions options);

  // Removes what `kind` ("file" | "process" | "service" | "cron") and `target` name. Returns
  // the journal record: {"id", "kind", "target", "sessionId", "requestedBy", "time", "removed":
  // [{"what", "location", "detail"}], "undone": false, ...}. NotFound when nothing matches;
  // the remediation is then not recorded.
  Result<nlohmann::json> Remediate(const std::string& kind, const std::string& target,
                                   const std::string& session_id, const std::string& requested_by);

  // Restores remediation `id`, or without one the last that is not undone yet. Returns the
  // record with "undone": true and "restored": [...]. FailedPrecondition for a process
  // ("a stopped process cannot be restarted; its executable is ..."), NotFound for an unknown
  // id or when there is nothing left to undo, FailedPrecondition if already undone.
  Result<nlohmann::json> Undo(const std::optional<std::string>& id);

  // The journal's records, oldest first.
  nlohmann::json Records() const;

 private:
  explicit LiveRemediation(RemediationOptions options) : options_(std::move(options)) {}
  Status Save();
  // Each fills `rec` and applies the change; the record is appended (and saved) by
  // Persist before anything on the host changes.
  Status RemediateFile(const std::string& target, nlohmann::json& rec);
  Status RemediateProcess(const std::string& target, nlohmann::json& rec);
  Status RemediateService(const std::string& target, nlohmann::json& rec);
  Status RemediateCron(const std::string& target, nlohmann::json& rec);
  // Appends `rec` to the journal (taking the next id) and saves it.
  Status Persist(nlohmann::json& rec);
  // Saves `rec` (already in the journal) in its current form.
  Status Update(const nlohmann::json& rec);
  // Removes the PersistenceChanges of rec["changes"] in order; on failure puts back those
  // already removed.
  Status ApplyChanges(nlohmann::json& rec);
  Result<nlohmann::json> RestoreChanges(const nlohmann::json& rec);
  Status Systemctl(const std::vector<std::string>& args) const;

  const RemediationOptions options_;
  mutable std::mutex mu_;
  nlohmann::json journal_ = {{"next", 1}, {"remediations", nlohmann::json::array()}};
};

}  // namespace quell::agent::live
