// The agent side of an interactive live response session: the session's working directory and
// the agent-side commands (docs/operations.md, "Live response sessions"). The server has
// already split the line into argv, checked the caller's role and removed `&` / `-output`.
//
//   cd <dir> / pwd                    the session's cwd (starts "/"); relative paths resolve
//                                     against it
//   ls|dir [path]                     mode, owner, size, mtime, name (symlinks with target)
//   fileinfo <path>                   hashes, size, owner/group, mode, times, type, owning
//                                     Debian package (from <dpkg_info_dir>/*.list)
//   findfile <name-or-glob> [dir]     walks dir (default "/"), skipping pseudo filesystems;
//                                     at most max_find_results paths
//   getfile <path>                    safe_paths rules; uploaded as "command-<id>"
//   putfile <libname> [-keep]         library -> <work_dir>/files/ (or kept/), digest checked
//   processes, connections, persistence, services, scheduledtasks
//   run <libscript> [args...]         library script -> scripts/, run in files/ (no shell)
//   remediate file|process|service|cron <target>, undo [id]   (live_remediation.h)
//
// Output is text: an aligned table, or with output_format "json" one JSON document.
// Thread-safe: commands of one session may run concurrently (background jobs); only cd
// changes the shared state, under a mutex.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "agent/actions/artifact_sender.h"
#include "agent/live/live_remediation.h"
#include "common/status.h"

namespace quell::agent::live {

inline constexpr size_t kMaxLiveChunkBytes = 64 * 1024;

struct LiveShellOptions {
  std::string work_dir;  // files/, scripts/, out/, kept/ below it
  // Where the host listings read (processes, connections, persistence, services,
  // scheduledtasks): "/" and "/proc" on a host; fixtures in tests. File commands (ls, cd,
  // fileinfo, findfile, getfile) always use the real paths.
  std::string collect_root = "/";
  std::string proc_root = "/proc";
  std::string dpkg_info_dir = "/var/lib/dpkg/info";
  std::string mounts_path = "/proc/self/mounts";  // pseudo mounts findfile skips
  uint64_t max_get_file_bytes = 3ull << 30;
  uint64_t max_output_bytes = 16ull << 20;     // per command; the rest is cut with a note
  uint64_t max_script_output_bytes = 16ull << 20;  // per stream of `run`
  size_t max_find_results = 1000;
  ArtifactSender send;    // getfile
  LibraryFetcher fetch;   // putfile, run
  LiveRemediation* remediation = nullptr;  // nullptr: remediate / undo refused
};

// One command as the shell runs it.
struct LiveCommandRequest {
  std::string session_id;
  uint32_t command_id = 0;
  std::vector<std::string> argv;  // argv[0]: the command name
  bool json = false;              // output_format "json"
  std::string requested_by;
  std::string library_sha256;     // putfile / run
  uint64_t library_size = 0;
  std::chrono::milliseconds time_limit{120'000};  // run: the script's limit
};

struct LiveCommandOutcome {
  Status status;  // Ok, or why it failed (Cancelled when stopped)
  std::string artifact_name;  // getfile
  uint64_t artifact_size = 0;
  std::string artifact_sha256;
};

class LiveShell {
 public:
  explicit LiveShell(const LiveShellOptions& options) : options_(options) {}

  // Runs one command. `out` receives the output in order (any chunking); `stop` ends the
  // command early (the outcome is then Cancelled unless it had already finished).
  LiveCommandOutcome Execute(const LiveCommandRequest& request, std::stop_token stop,
                             const std::function<void(std::string_view)>& out);

  std::string cwd() const;

  // `path` made absolute against `cwd` and normalised lexically.
  static std::string Resolve(const std::string& cwd, const std::string& path);

 private:
  struct Ctx;
  Status Cd(Ctx& c);
  Status Pwd(Ctx& c);
  Status Ls(Ctx& c);
  Status FileInfo(Ctx& c);
  Status FindFile(Ctx& c);
  Status GetFile(Ctx& c);
  Status PutFile(Ctx& c);
  Status Run(Ctx& c);
  Status Processes(Ctx& c);
  Status Connections(Ctx& c);
  Status Collected(Ctx& c, const std::string& what);  // persistence, services, scheduledtasks
  Status Remediate(Ctx& c);
  Status Undo(Ctx& c);
  Status FetchLibrary(Ctx& c, const std::string& name, const std::string& dest, unsigned mode);

  const LiveShellOptions& options_;
  mutable std::mutex mu_;
  std::string cwd_ = "/";
};

// The Debian package whose file list (<dpkg_info_dir>/<pkg>.list) holds `path`, or "".
std::string OwningDebianPackage(const std::string& dpkg_info_dir, const std::string& path);

}  // namespace quell::agent::live
