// Finding the processes that run a file (as their executable, also when it was deleted, or as
// a script given to an interpreter) and killing them with their descendants.
//
// Killing works on a stable snapshot: the matched processes and their descendants are first
// stopped (SIGSTOP, so none can fork or exit-and-reuse its pid), the tree is read again until
// no new descendant appears, then everything is killed (SIGKILL) and waited for. Signals go
// through pidfds checked against the snapshot's start time, so a reused pid is never hit.
// The agent itself and pid 1 are never signalled.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace quell::agent::quarantine {

struct ProcessInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  uint64_t start_time = 0;   // field 22 of /proc/<pid>/stat (clock ticks since boot)
  std::string exe;           // readlink of /proc/<pid>/exe without " (deleted)"
  bool exe_deleted = false;
  bool exe_id_known = false;  // exe_dev/exe_ino valid (stat through /proc/<pid>/exe worked)
  uint64_t exe_dev = 0, exe_ino = 0;
  std::vector<std::string> argv;
  std::string cwd;           // readlink of /proc/<pid>/cwd ("" if unknown)
  // For interpreters: the identity (dev, ino) of the file each argv[i] names as the process
  // itself sees it (resolved through /proc/<pid>/root and /proc/<pid>/cwd, so a process in
  // another mount namespace — a container, a lab host — is judged by its own files, never by
  // a path that happens to be spelled the same here). {0, 0} when it names no file.
  std::vector<std::pair<uint64_t, uint64_t>> arg_ids;
};

// Parses /proc/<pid>/stat: ppid and start time. False if malformed.
bool ParseProcStat(std::string_view text, pid_t& ppid, uint64_t& start_time);

// Every process in `proc_root` (kernel threads and exited processes skipped silently).
std::vector<ProcessInfo> ReadProcessTable(const std::string& proc_root);

// A file to look for: its host path and, when known, its identity.
struct FileIdentity {
  std::string path;
  bool id_known = false;
  uint64_t dev = 0, ino = 0;
};

// "executable" when `p` runs `f` as its image, "script" when an interpreter (sh, bash,
// python3, perl, ...) was given it as an argument, "" otherwise.
std::string HowProcessRuns(const ProcessInfo& p, const FileIdentity& f);

// The kernel side of killing, so that tree logic is tested against a fake /proc.
class ProcessSignaller {
 public:
  virtual ~ProcessSignaller() = default;
  // Sends `sig` to `p` if it is still the same process (start time). Ok if it has exited.
  virtual Status Signal(const ProcessInfo& p, int sig) = 0;
  // Waits until every process in `ps` has exited (or `timeout`); returns those still alive.
  virtual std::vector<pid_t> WaitExited(const std::vector<ProcessInfo>& ps,
                                        std::chrono::milliseconds timeout) = 0;
};

// The real signaller: pidfd_open + start-time check + pidfd_send_signal (kill() where pidfds
// are not supported), waiting by polling the pidfds.
class PidfdSignaller final : public ProcessSignaller {
 public:
  explicit PidfdSignaller(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}
  Status Signal(const ProcessInfo& p, int sig) override;
  std::vector<pid_t> WaitExited(const std::vector<ProcessInfo>& ps,
                                std::chrono::milliseconds timeout) override;

 private:
  std::string proc_root_;
};

struct KilledProcess {
  pid_t pid = 0;
  std::string exe;     // what it ran ("(deleted)" appended when its image was deleted)
  std::string reason;  // "executable" | "script" | "descendant"
  std::string file;    // the file it ran (for descendants: the file its ancestor ran)
};

struct KillOptions {
  std::string proc_root = "/proc";
  pid_t self_pid = 0;  // 0: getpid()
  std::chrono::milliseconds wait = std::chrono::seconds(5);
  int rounds = 3;  // re-scans after killing, for processes started meanwhile
};

// Kills every process running one of `files` and all their descendants. Returns what was
// killed; Internal if some process survived SIGKILL within options.wait.
Result<std::vector<KilledProcess>> KillProcessesRunning(const std::vector<FileIdentity>& files,
                                                        const KillOptions& options,
                                                        ProcessSignaller& signaller);

}  // namespace quell::agent::quarantine
