// Reading what a traced process passed to a system call: strings, argv arrays and structs from
// its memory (process_vm_readv), and its cwd / fd links from /proc. Every read is bounded and
// a bad pointer or a vanished process yields nullopt or an empty value, never an error: the
// sample controls these pointers.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace quell::sandbox {

// Up to `max_bytes` bytes at `addr` in `pid`; fewer when the read crosses into unmapped memory.
std::string ReadTraceeBytes(pid_t pid, uint64_t addr, size_t max_bytes);

// The NUL-terminated string at `addr`, cut at `max_bytes`. nullopt for a NULL or bad pointer.
std::optional<std::string> ReadTraceeString(pid_t pid, uint64_t addr, size_t max_bytes);

// The NULL-terminated array of string pointers at `addr` (argv), at most `max_items` items of
// at most `max_item_bytes` each.
std::vector<std::string> ReadTraceeArgv(pid_t pid, uint64_t addr, size_t max_items,
                                        size_t max_item_bytes);

// The target of /proc/<pid>/cwd, or of /proc/<pid>/fd/<fd>; "" when unreadable.
std::string TraceeCwd(pid_t pid);
std::string TraceeFdPath(pid_t pid, int fd);
std::string TraceeExe(pid_t pid);  // /proc/<pid>/exe

// `path` as an absolute path: as it is when it starts with '/', else joined to the directory
// `dirfd` names in `pid` (AT_FDCWD: its cwd). An empty path names the dirfd itself
// (AT_EMPTY_PATH). "." segments and repeated slashes are dropped; ".." is kept (symlinks).
std::string ResolveTraceePath(pid_t pid, int dirfd, const std::string& path);

// Joins and lexically tidies as above; pure (exposed for tests).
std::string JoinTraceePath(const std::string& base, const std::string& path);

// Whether `abs_path` exists in `pid`'s view of the file system (its root and mounts), without
// following a final symlink. Resolution stays inside the tracee's root (RESOLVE_IN_ROOT), so a
// sample's symlink cannot point the check at the supervisor's files.
bool ExistsInTraceeRoot(pid_t pid, const std::string& abs_path);

// The thread-group id of thread `tid`, and its pid in the innermost pid namespace (how the
// sample itself numbers it), from /proc/<tid>/status. nullopt when gone.
std::optional<pid_t> TraceeTgid(pid_t tid);
std::optional<pid_t> TraceeNamespacePid(pid_t tid);
std::optional<pid_t> TraceeParent(pid_t tid);  // PPid

// SO_TYPE (SOCK_STREAM, SOCK_DGRAM, ...) of socket `fd` of process `pid`, through pidfd_getfd;
// nullopt when that fails.
std::optional<int> TraceeSocketType(pid_t pid, int fd);

}  // namespace quell::sandbox
