#include "agent/live/safe_paths.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <vector>

namespace quell::agent::live {
namespace {

constexpr char kPseudoRefused[] = "refused: /proc, /sys and /dev are not collected";

// Why a non-regular file is refused, or empty for a regular file.
std::string NotRegular(mode_t mode) {
  if (S_ISREG(mode)) return "";
  if (S_ISFIFO(mode)) return "is a fifo";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "is a device";
  if (S_ISSOCK(mode)) return "is a socket";
  if (S_ISDIR(mode)) return "is a directory";
  if (S_ISLNK(mode)) return "symbolic link loop";
  return "is not a regular file";
}

Status OpenError(const std::string& path, int err) {
  switch (err) {
    case ELOOP: return InvalidArgument("symbolic link loop");
    case ENOENT: return NotFound("no such file");
    case ENOTDIR: return NotFound("no such file (a parent is not a directory)");
    case EACCES:
    case EPERM: return PermissionDenied("permission denied");
    case ENXIO: return InvalidArgument("is a socket");
    default: return ErrnoStatus("open " + path, err);
  }
}

// Opens one normalised path without following a final symlink. `final_link` is set when the
// last component is a symlink (and nothing was opened).
Result<ReadableFile> OpenChecked(const std::string& path, uint64_t max_bytes, bool& final_link) {
  final_link = false;
  if (IsPseudoFilesystemPath(path)) return PermissionDenied(kPseudoRefused);
  // Looked at before opening: opening a device node can have effects (a tape rewinds).
  struct stat lst {};
  if (::lstat(path.c_str(), &lst) != 0) return OpenError(path, errno);
  if (S_ISLNK(lst.st_mode)) {
    final_link = true;
    return InvalidArgument("symbolic link loop");
  }
  if (std::string why = NotRegular(lst.st_mode); !why.empty()) return InvalidArgument(why);

  ReadableFile f;
  f.path = path;
  f.fd.Reset(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!f.fd) return OpenError(path, errno);
  // What was opened decides, not what lstat saw a moment earlier.
  if (::fstat(f.fd.get(), &f.st) != 0) return ErrnoStatus("fstat " + path);
  if (std::string why = NotRegular(f.st.st_mode); !why.empty()) return InvalidArgument(why);
  // A symlinked directory in the middle of the path, or procfs/sysfs mounted elsewhere.
  struct statfs fs {};
  if (::fstatfs(f.fd.get(), &fs) == 0 &&
      (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC)) {
    return PermissionDenied(kPseudoRefused);
  }
  char real[PATH_MAX + 1];
  std::string self = "/proc/self/fd/" + std::to_string(f.fd.get());
  ssize_t n = ::readlink(self.c_str(), real, PATH_MAX);
  if (n > 0 && IsPseudoFilesystemPath(std::string_view(real, static_cast<size_t>(n)))) {
    return PermissionDenied(kPseudoRefused);
  }
  if (static_cast<uint64_t>(f.st.st_size) > max_bytes) {
    return ResourceExhausted(std::to_string(f.st.st_size) + " bytes, more than the limit of " +
                             std::to_string(max_bytes));
  }
  ::fcntl(f.fd.get(), F_SETFL, 0);  // blocking reads from here on
  return f;
}

}  // namespace

std::string NormalizeAbsolutePath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out;
  for (std::string_view p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? "/" : out;
}

bool IsPseudoFilesystemPath(std::string_view normalized) {
  for (std::string_view root : {"/proc", "/sys", "/dev"}) {
    if (normalized.starts_with(root) &&
        (normalized.size() == root.size() || normalized[root.size()] == '/')) {
      return true;
    }
  }
  return false;
}

Result<ReadableFile> CheckReadableFile(const std::string& path, uint64_t max_bytes) {
  if (path.empty() || path[0] != '/') return InvalidArgument("not an absolute path");
  if (path.find('\0') != std::string::npos) return InvalidArgument("the path contains NUL");
  if (path.size() > kMaxGetFilePathChars) {
    return InvalidArgument("the path is longer than " + std::to_string(kMaxGetFilePathChars) +
                           " characters");
  }
  const std::string normalized = NormalizeAbsolutePath(path);
  bool final_link = false;
  Result<ReadableFile> f = OpenChecked(normalized, max_bytes, final_link);
  if (f.ok() || !final_link) return f;

  // The last component is a symlink: resolved once, the target checked as if asked for.
  char resolved[PATH_MAX + 1];
  if (::realpath(normalized.c_str(), resolved) == nullptr) return OpenError(normalized, errno);
  Result<ReadableFile> target = OpenChecked(resolved, max_bytes, final_link);
  if (!target.ok() && final_link) {
    // realpath returns a path without symlinks; one appeared since: a race, or an attack.
    return InvalidArgument("the file changed while it was being opened");
  }
  return target;
}

bool ValidLibraryName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  if (name.find("..") != std::string_view::npos) return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace quell::agent::live
