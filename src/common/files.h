// Small file helpers with Status results. Writes are atomic (temp file, fsync, rename) so a
// crash never leaves a half-written state or config file behind.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace quell {

Result<std::string> ReadFile(const std::string& path);

// Writes `contents` to `path` atomically with the given mode. The directory must exist.
Status WriteFileAtomic(const std::string& path, const std::string& contents, unsigned mode = 0600);

// Creates `path` and missing parents with `mode` (existing directories are left as they are).
Status MakeDirs(const std::string& path, unsigned mode = 0700);

// Names (not paths) of the regular files in `dir`, sorted. Missing dir -> empty list.
Result<std::vector<std::string>> ListFiles(const std::string& dir);

Status RemoveFile(const std::string& path);  // a missing file is not an error

// The file type of a st_mode, as the investigation package and the live shell name it:
// "file", "directory", "symlink", "fifo", "socket", "char-device", "block-device", "other".
std::string FileTypeName(mode_t mode);

}  // namespace quell
