// Exact records of filesystem objects, so that whatever the quarantine removes or rewrites can
// be put back byte-for-byte with its owner, mode, times and extended attributes. Also the
// encoding of arbitrary bytes (paths with newlines, binary xattr values) in JSON records.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace quell::agent::quarantine {

// Bytes in JSON: a valid UTF-8 string as itself, anything else as {"base64": "..."}, so a
// record never fails to serialize and always round-trips exactly.
nlohmann::json BytesToJson(const std::string& bytes);
Result<std::string> BytesFromJson(const nlohmann::json& j);

// Extended attributes, (name, value) in the order the kernel lists them.
using Xattrs = std::vector<std::pair<std::string, std::string>>;
Result<Xattrs> ReadXattrs(int fd);
// Sets every attribute; the first failure is returned (after trying the rest).
Status WriteXattrs(int fd, const Xattrs& xattrs);
nlohmann::json XattrsToJson(const Xattrs& xattrs);
Result<Xattrs> XattrsFromJson(const nlohmann::json& j);

// "a/b/c" -> "a/b"; "/c" -> "/".
std::string ParentDir(const std::string& path);
// root + absolute path, "/" root meaning the path itself.
std::string JoinRoot(const std::string& root, std::string_view abs_path);

// Times of a directory, to put back after an entry in it was removed or re-created (the
// kernel changes a directory's mtime on every create, unlink and rename in it).
struct DirTimes {
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
};
std::optional<DirTimes> ReadDirTimes(const std::string& dir);
Status WriteDirTimes(const std::string& dir, const DirTimes& times);

// One regular file or symlink as it was.
struct FileState {
  enum class Type { kRegular, kSymlink };
  Type type = Type::kRegular;
  std::string path;     // as opened (the configured root included)
  std::string content;  // the file's bytes, or the symlink's target
  uint32_t mode = 0;    // permission bits incl. setuid/setgid/sticky
  uint32_t uid = 0, gid = 0;
  int64_t atime_ns = 0, mtime_ns = 0;
  Xattrs xattrs;        // regular files only
  std::optional<DirTimes> parent;

  bool SameContent(const FileState& other) const {
    return type == other.type && content == other.content;
  }
};

// Reads `path` (not following a final symlink). NotFound if absent; FailedPrecondition for
// other file types or files larger than `max_bytes`.
Result<FileState> CaptureFileState(const std::string& path, uint64_t max_bytes = 4u << 20);

// Writes `content` (or state.content when nullopt) at state.path through a temp file and a
// rename, with state's owner, mode and xattrs. With `restore_times`, the file's atime/mtime
// and its directory's times are put back too; otherwise the file gets the current time
// (what a daemon that watches mtimes, such as cron, needs to notice the change).
Status PutFileState(const FileState& state, std::optional<std::string> content,
                    bool restore_times);

// Removes state.path (a regular file or symlink). A missing path is not an error.
Status RemovePath(const std::string& path);

nlohmann::json FileStateToJson(const FileState& s);
Result<FileState> FileStateFromJson(const nlohmann::json& j);

}  // namespace quell::agent::quarantine
