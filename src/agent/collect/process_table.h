// The process table as a responder reads it: one record per process in a procfs, with the
// facts that matter in an investigation (owner, command line, executable and its hash, and
// whether that executable was deleted from disk after it started). Used by the investigation
// package's "Processes" topic and by live response's `processes` command.
//
// Reading is best effort and never fails as a whole once the procfs can be listed: a process
// that exits mid-walk is skipped silently, and a field that cannot be read (permissions,
// kernel threads) is left empty. Parsers are pure functions over text, tested without /proc.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace quell::agent::collect {

struct ProcessRecord {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::string name;               // comm (at most 15 bytes, chosen by the process itself)
  char state = '?';               // R, S, D, Z, T, ... (field 3 of stat)
  bool kernel_thread = false;     // PF_KTHREAD: no executable, no command line
  bool uid_known = false;         // uid/euid valid (from status)
  uint32_t uid = 0, euid = 0;     // real and effective
  std::string user, euser;        // names of uid/euid from passwd, else the number
  std::vector<std::string> args;  // command line; empty for kernel threads and zombies
  std::string exe;                // readlink of exe, without " (deleted)"
  bool exe_deleted = false;       // the image was unlinked (or replaced) since it started
  std::string exe_sha256;         // "" when not hashed; exe_hash_error says why
  std::string exe_hash_error;
  std::string cwd;                // readlink of cwd
  uint64_t start_ticks = 0;       // field 22 of stat: clock ticks since boot
  UnixMillis start_time = 0;      // wall time of the start; 0 when the boot time is unknown
};

struct ProcessListOptions {
  // passwd(5) file that names uids; "" or unreadable: users are shown as numbers.
  std::string passwd_path;
  bool hash_executables = true;
  // Larger executables are not hashed (exe_hash_error says so) to bound the time spent.
  uint64_t max_hash_bytes = 256ull << 20;
  // Polled between processes; once true, remaining processes are listed without hashing.
  std::function<bool()> stop_hashing;
};

// Every process in `proc_root` ("/proc" or a fixture), sorted by pid. Executables are hashed
// through <proc_root>/<pid>/exe (so a deleted image is still hashed), each distinct file
// (device, inode) once. NotFound if `proc_root` cannot be listed.
Result<std::vector<ProcessRecord>> ListProcesses(const std::string& proc_root,
                                                 const ProcessListOptions& options = {});

nlohmann::json ProcessesToJson(const std::vector<ProcessRecord>& processes);

// An indented tree by ppid (children under their parent, sorted by pid; processes whose parent
// is not in the list are roots), one line per process:
//   "<indent><pid> <user> [DELETED EXE] <command line>"
// Kernel threads and empty command lines show as "[name]". Control characters are escaped so a
// crafted argument cannot forge lines.
std::string ProcessTreeText(const std::vector<ProcessRecord>& processes);

// --- pure parsers ---------------------------------------------------------------------------

struct ProcStat {
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  uint32_t flags = 0;
  uint64_t start_ticks = 0;
};
// Parses /proc/<pid>/stat (comm may hold spaces and ')'). nullopt if malformed.
std::optional<ProcStat> ParseProcStat(std::string_view text);
// Real and effective uid from the "Uid:" line of /proc/<pid>/status.
std::optional<std::pair<uint32_t, uint32_t>> ParseStatusUids(std::string_view text);
// NUL-separated /proc/<pid>/cmdline into arguments (a final NUL does not add an empty one).
std::vector<std::string> SplitCmdline(std::string_view text);
// uid -> name from passwd(5) text; the first entry for a uid wins, malformed lines skipped.
std::map<uint32_t, std::string> ParsePasswdNames(std::string_view text);
// Boot time in seconds since the epoch from the "btime" line of /proc/stat.
std::optional<int64_t> ParseBootTime(std::string_view proc_stat_text);

// --- text safety, shared by the runtime tables ---------------------------------------------
// Strings read from the host (argv, comm, utmp fields) are attacker-controlled bytes.

// For text reports: control characters, '\\' and invalid UTF-8 bytes become "\xNN".
std::string EscapeForText(std::string_view s);
// For JSON: valid UTF-8 is kept as is (JSON escapes controls itself); each byte of an invalid
// sequence becomes "\xNN", so serialization never throws and nothing is silently dropped.
std::string ValidUtf8(std::string_view s);

}  // namespace quell::agent::collect
