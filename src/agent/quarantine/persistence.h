// Persistence that points at a file, found and removed with an exact record so that it can be
// put back byte-for-byte: cron lines, systemd units (+ their enable symlinks), rc.local and
// shell profile lines, authorized_keys command= lines, /etc/ld.so.preload entries, XDG
// autostart entries and udev RUN rules.
//
// Every location is looked up under `root` ("/" on a real host; a temp dir in tests). Paths in
// records and reports are host paths (without the root); paths that are opened have it.
// Finding only reads; RemovePersistence / RestorePersistence each change one location and are
// idempotent (re-running after a crash is safe).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "agent/quarantine/file_state.h"
#include "common/status.h"

namespace quell::agent::quarantine {

// Runs a program (argv[0] looked up in PATH) and returns its exit status.
using CommandRunner = std::function<Result<int>(const std::vector<std::string>& argv)>;
// The real one: posix_spawnp + waitpid, output discarded.
Result<int> RunCommand(const std::vector<std::string>& argv);

struct PersistenceOptions {
  std::string root = "/";
  // Whether systemctl is called (stop/disable before removing a system unit, daemon-reload
  // after, start again on restore if it was active). Off in labs: there systemctl would talk
  // to the real machine's systemd.
  bool use_systemctl = true;
  CommandRunner run_command = RunCommand;
  uint64_t max_file_bytes = 4u << 20;  // larger config files are not examined
};

// One line-level change inside a file.
struct LineChange {
  size_t index = 0;         // 0-based line number in the original
  std::string old_line;     // without the newline
  bool removed = true;      // false: replaced by new_line (an ld.so.preload line with others)
  std::string new_line;
};

struct PersistenceChange {
  // "cron" | "systemd" | "rc.local" | "profile" | "authorized_keys" | "ld.so.preload" |
  // "xdg-autostart" | "udev"
  std::string kind;
  std::string location;  // host path of the file or symlink changed
  std::string detail;    // what pointed at the file: the line(s), "unit file", "enable symlink"
  std::string unit;      // systemd: the unit's name (for systemctl); empty otherwise
  bool user_unit = false;  // systemd user unit (~/.config/systemd/user): no systemctl
  bool remove_file = false;  // the whole file/symlink goes; otherwise lines change
  std::vector<LineChange> lines;  // when !remove_file
  FileState before;               // the exact original (before.path includes the root)
  std::string after;              // content written when !remove_file
};

// Every location under options.root that starts or loads `host_path` (a host path such as
// "/tmp/x"). A line matches when it names the path as a whole word (also quoted or with
// backslash-escaped spaces). Unreadable locations are skipped.
std::vector<PersistenceChange> FindPersistence(const PersistenceOptions& options,
                                               const std::string& host_path);

// Removes one entry. Ok if already removed; FailedPrecondition if the location changed since
// it was examined (neither the original nor the result).
Status RemovePersistence(const PersistenceOptions& options, const PersistenceChange& change);

// Puts one entry back exactly (content, owner, mode, xattrs, times). Ok if already back.
// If the file was edited since the removal, the removed lines are re-inserted at their line
// numbers into the current content (times are then not restored). AlreadyExists if a removed
// file's path now holds something else.
Status RestorePersistence(const PersistenceOptions& options, const PersistenceChange& change);

nlohmann::json PersistenceChangeToJson(const PersistenceChange& c);
Result<PersistenceChange> PersistenceChangeFromJson(const nlohmann::json& j);

// Home directories examined for per-user locations: /root and every directory in /home.
std::vector<std::string> HomeDirs(const std::string& root);

// Whether `line` names `path` as a whole word (see FindPersistence).
bool LineNamesPath(std::string_view line, std::string_view path);

// Absolute paths named anywhere in the persistence locations (candidates when looking for a
// file by hash).
std::vector<std::string> PathsNamedByPersistence(const PersistenceOptions& options);

}  // namespace quell::agent::quarantine
