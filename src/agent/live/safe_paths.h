// Which paths live response may read (GetFile) and which names the library may hold.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/unique_fd.h"

namespace quell::agent::live {

inline constexpr size_t kMaxGetFilePathChars = 4096;

// A regular file opened for reading; what GetFile uploads is read through `fd`, never by
// path again, so the file checked is the file sent.
struct ReadableFile {
  UniqueFd fd;
  struct stat st {};
  std::string path;  // the path opened: normalised, a final symlink resolved
};

// "/a/./b/../c//" -> "/a/c": "." and ".." removed lexically (".." above "/" stays at "/"),
// duplicate and trailing slashes dropped. REQUIRES: `path` starts with '/'.
std::string NormalizeAbsolutePath(std::string_view path);

// True for /proc, /sys, /dev and anything below them. REQUIRES: a normalised path.
bool IsPseudoFilesystemPath(std::string_view normalized);

// Opens `path` for GetFile, refusing with a message meant for the responder:
//   "not an absolute path", "refused: /proc, /sys and /dev are not collected" (also when a
//   symlink or a mount leads there), "symbolic link loop", "is a fifo", "is a device",
//   "is a socket", "is a directory", "no such file", "permission denied", and
//   "<size> bytes, more than the limit of <max_bytes>".
// Symlinks inside the path are followed; a symlink as the final component is resolved once
// (realpath) and the result checked again by the same rules. Never blocks on a fifo and never
// opens a device.
Result<ReadableFile> CheckReadableFile(const std::string& path, uint64_t max_bytes);

// A library file name: 1-128 of [A-Za-z0-9._-], not starting with '.', without "..".
bool ValidLibraryName(std::string_view name);

}  // namespace quell::agent::live
