// Private to the collectors (collect_*.cc): host paths under CollectSources::root, reading host
// files without following a final symlink or blocking on a fifo, users and their homes,
// unit-file, crontab and at-job parsing, and listing a tree.
//
// Secrets are not screened here: PackageStaging screens everything added (secret_screen.h).
// What these helpers return for an index is either parsed from the staged copy
// (CopyHostFile) or passed through the same screen (ReadAsStaged), because a JSON index is
// screened value by value and a key block split into lines would otherwise pass line by line.
#pragma once

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/collect/collectors.h"
#include "agent/collect/package_staging.h"
#include "common/status.h"

namespace quell::agent::collect::files {

// --- paths and files ------------------------------------------------------------------------

// The path opened for host path `host` ("/etc/crontab") under sources.root.
std::string Under(const CollectSources& s, std::string_view host);
// The artifact name of a copied host file: the host path without its leading '/'.
std::string CopyName(std::string_view host);
// lstat(2); nullopt when the path does not exist or cannot be examined.
std::optional<struct stat> LStat(const std::string& path);
// Whether `path` itself (not a symlink's target) is a directory.
bool IsDirNoFollow(const std::string& path);
// Entry names of a directory (not following it if it is a symlink), sorted; empty when it
// cannot be opened.
std::vector<std::string> DirNames(const std::string& path);
// A symlink's target; "" when `path` is not a readable symlink.
std::string ReadLink(const std::string& path);
// Up to `max_bytes` of a regular file; a symlink, fifo, device or directory is refused
// without blocking.
Result<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes);
// ReadRegularFile through the package's secret screen: the text as a staged copy would hold
// it, for parsing into an index.
Result<std::string> ReadAsStaged(const std::string& path, uint64_t max_bytes);

struct FileDigest {
  std::string sha256;  // "" when not hashed (see skipped)
  std::string skipped; // why not hashed: "larger than N bytes", an error
  bool elf = false;    // starts with \x7fELF
};

// SHA-256 and ELF magic of the regular file `name` in `dirfd` (AT_FDCWD: a path), never
// following a final symlink, never blocking on a fifo, and without touching its access time
// where the kernel allows.
FileDigest DigestAt(int dirfd, const char* name, uint64_t max_bytes);
FileDigest DigestFile(const std::string& path, uint64_t max_bytes);

// "file", "directory", "symlink", "fifo", "socket", "char-device", "block-device", "other".
std::string TypeName(mode_t mode);
// Permission bits incl. setuid/setgid/sticky as "04755".
std::string OctalMode(mode_t mode);
// The modification time as ISO 8601 UTC with milliseconds.
std::string MtimeIso(const struct stat& st);

// --- text -----------------------------------------------------------------------------------

// Lines without their '\n' (and a '\r' before it); no empty last element.
std::vector<std::string_view> Lines(std::string_view text);
// `s` without leading and trailing blanks and tabs.
std::string_view Trim(std::string_view s);
bool IsBlankOrComment(std::string_view line);
// The non-blank, non-comment lines (trimmed), at most `max_lines` (then a marker line).
std::vector<std::string> ActiveLines(std::string_view text, size_t max_lines = 2000);
// Whitespace-separated fields; `rest_from` (when not null) receives the position where field
// number `rest_index` starts (npos if there are fewer).
std::vector<std::string_view> Fields(std::string_view line, size_t rest_index = 0,
                                     size_t* rest_from = nullptr);

// --- copying --------------------------------------------------------------------------------

// Copies the host file `host` into <topic>/<host path without '/'> when it exists and returns
// the staged copy's text (up to `max_text` bytes, as screened) for an index; nullopt when it
// was not copied. A missing file or a directory is skipped silently; anything else that stops
// the copy (a symlink, a password-hash database) is recorded by the staging.
std::optional<std::string> CopyHostFile(const CollectSources& s, PackageStaging& out,
                                        std::string_view topic, const std::string& host,
                                        uint64_t max_text = 1u << 20);

// --- users ----------------------------------------------------------------------------------

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string gecos;
  std::string home;
  std::string shell;
};

// /etc/passwd lines; malformed lines and NIS "+"/"-" lines are skipped.
std::vector<PasswdEntry> ParsePasswd(std::string_view text);
// The host's /etc/passwd parsed; empty when it cannot be read.
std::vector<PasswdEntry> ReadPasswd(const CollectSources& s);
// uid -> name (the first entry of a uid wins).
std::map<uint32_t, std::string> UserNames(const std::vector<PasswdEntry>& users);
// A home from passwd as a clean absolute host path without a trailing '/' ("/" stays "/"),
// or "" when it is relative or has an empty, "." or ".." component.
std::string CleanHome(std::string_view home);
// `home` + "/" + `rel`, for `home` as CleanHome returns it.
std::string InHome(const std::string& home, std::string_view rel);
// Host paths of the home directories to examine: every passwd home that is a directory, and
// quarantine::HomeDirs (/root and every directory in /home, for users not in passwd). Sorted,
// without duplicates.
std::vector<std::string> UserHomes(const CollectSources& s, const std::vector<PasswdEntry>& users);

// --- systemd --------------------------------------------------------------------------------

struct UnitSetting {
  std::string section;
  std::string key;
  std::string value;
};

// A unit file's settings in order ('#'/';' comments skipped, '\' continuation lines joined).
std::vector<UnitSetting> ParseUnitFile(std::string_view text);

struct UnitDir {
  std::string host;            // "/etc/systemd/system"
  bool package_owned = false;  // /usr/lib, /lib: installed by packages
};

// The system unit directories in systemd's precedence order (a unit in an earlier one
// overrides the same name in a later one); /lib is skipped when it is /usr/lib (merged /usr).
std::vector<UnitDir> SystemUnitDirs(const CollectSources& s);
// "getty@tty1.service" -> "getty@.service"; other names unchanged.
std::string UnitTemplate(const std::string& unit);
// Unit name -> the enable symlinks naming it ("/etc/systemd/system/multi-user.target.wants/x.service"),
// from the *.wants, *.requires and *.upholds directories of the host dirs `dirs` (by default
// where systemctl enable puts system units). Template instances are also listed under their
// template, and aliased links under the name of the unit file they point to.
std::map<std::string, std::vector<std::string>> EnableLinks(
    const CollectSources& s,
    const std::vector<std::string>& dirs = {"/etc/systemd/system", "/run/systemd/system"});

// --- cron and at ----------------------------------------------------------------------------

struct CronEntry {
  size_t line = 0;       // 1-based
  std::string schedule;  // "*/5 * * * *" or "@reboot"
  std::string user;      // the user field (system crontabs) or the crontab's owner
  std::string command;
};

// Whether `line` is a shell-style "NAME=value" assignment.
bool IsEnvAssignment(std::string_view line);
// Crontab entries. `system_format`: /etc/crontab and /etc/cron.d (a user field after the
// schedule); otherwise a user's crontab owned by `owner`. Comments, blank lines and
// environment assignments are skipped; lines too short to be entries are kept with an empty
// schedule and the whole line as command so nothing planted disappears from the listing.
std::vector<CronEntry> ParseCrontab(std::string_view text, bool system_format,
                                    std::string_view owner);

struct AtJob {
  std::string uid;                    // from "# atrun uid=N", "" when absent
  std::vector<std::string> commands;  // what it runs, without at's environment preamble
};

// An at(1) spool file: the commands follow the "cd <dir> || { ... }" block at writes after
// the environment; the heredoc wrapper of newer versions is dropped too.
AtJob ParseAtJob(std::string_view text);

// --- listing a tree -------------------------------------------------------------------------

struct TreeOptions {
  int max_depth = 8;              // entries deeper than this below the root are not listed
  size_t max_entries = 20000;     // over all roots walked into one TreeListing
  bool hash = true;               // sha256 of regular files ...
  uint64_t max_hash_bytes = 64ull << 20;  // ... up to this size
};

// A listing built by WalkTree: one JSON object and one text line per entry.
struct TreeListing {
  nlohmann::json entries = nlohmann::json::array();
  std::string text;            // "<type> <mode> <owner> <size> <mtime> <sha256|-> <x|-> <path>"
  size_t count = 0;
  bool truncated = false;      // the entry cap was reached
  std::vector<std::pair<std::string, std::string>> unreadable;  // directories not opened: path, why
};

// Lists the tree at host path `host_root` into `l` (the root itself is not an entry), never
// following a symlink, depth-first in name order, until the entry cap or the package's limits.
// Returns false when the root is missing or not a directory.
bool WalkTree(const CollectSources& s, const std::string& host_root, const TreeOptions& o,
              const std::map<uint32_t, std::string>& owners, PackageStaging& out, TreeListing& l);

}  // namespace quell::agent::collect::files
