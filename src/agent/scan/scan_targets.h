// What a scan looks at: the Quick scan's locations (running executables and persistence),
// the Full scan's local filesystems, and the walk that turns them into a list of files.
// Parsers are pure functions over text so they are tested without touching the host.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace quell::agent::scan {

struct ScanTarget {
  std::string path;          // what is opened, e.g. "/proc/42/exe" for a deleted executable
  std::string display_path;  // what is reported; empty = path
  bool recursive = false;    // directories: descend (true) or only their top-level files
};

// --- pure parsers ---------------------------------------------------------------------------

struct MountEntry {
  uint32_t major = 0;
  uint32_t minor = 0;
  std::string mount_point;  // unescaped (\040 -> ' ')
  std::string fs_type;
};
// Parses /proc/<pid>/mountinfo. Malformed lines are skipped.
std::vector<MountEntry> ParseMountInfo(std::string_view text);
// False for pseudo (proc, sysfs, cgroup, devtmpfs, ...) and network (nfs, cifs, fuse.sshfs,
// ...) filesystem types: a Full scan does not enter them. tmpfs and overlay are local.
bool IsLocalFilesystem(std::string_view fs_type);
// Absolute binaries that ExecStart=, ExecStartPre=, ExecStartPost=, ExecReload=, ExecStop=
// name in a systemd unit (prefixes "-@:+!" stripped).
std::vector<std::string> ParseUnitExecBinaries(std::string_view unit_text);
// Absolute binaries named by command="..." options in an authorized_keys file.
std::vector<std::string> ParseAuthorizedKeysCommands(std::string_view text);
// Libraries listed in /etc/ld.so.preload (whitespace or ':' separated, '#' comments).
std::vector<std::string> ParseLdPreload(std::string_view text);

// --- locations -------------------------------------------------------------------------------

struct QuickScanOptions {
  // Persistence locations, temp dirs and homes are looked up under this root ("/" on a real
  // host; a lab or test directory otherwise).
  std::string root = "/";
  // Include the executables of running processes (read from proc_root/<pid>/exe).
  bool include_processes = true;
  std::string proc_root = "/proc";
};
// The Quick scan's targets. Missing locations are simply absent.
std::vector<ScanTarget> QuickScanTargets(const QuickScanOptions& options);

// Devices (st_dev) of mounts a Full scan must not enter, from mountinfo text.
std::set<dev_t> ExcludedDevices(const std::vector<MountEntry>& mounts);

// --- walking ---------------------------------------------------------------------------------

struct FileItem {
  std::string open_path;
  std::string display_path;
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

struct WalkStats {
  uint64_t unreadable = 0;  // entries that could not be stat'ed or opened (EACCES, races)
  uint64_t special = 0;     // fifos, sockets, devices: never opened
};

// Expands targets into regular files, each (dev, ino) once, never following symlinks inside
// directories, never entering `excluded_devices`. Returns Cancelled if `stop` fires.
Result<std::vector<FileItem>> EnumerateFiles(const std::vector<ScanTarget>& targets,
                                             const std::set<dev_t>& excluded_devices,
                                             std::stop_token stop, WalkStats* stats);

}  // namespace quell::agent::scan
