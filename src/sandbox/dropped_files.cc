#include "sandbox/dropped_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "common/hash.h"
#include "common/unique_fd.h"

namespace quell::sandbox {
namespace {

struct Walk {
  const DroppedFileLimits& limits;
  const std::string& skip_path;
  const std::string& skip_sha256;
  std::vector<DroppedFile> files;
};

bool LooksExecutable(int fd) {
  char head[4] = {};
  ssize_t n = ::pread(fd, head, sizeof head, 0);
  if (n >= 4 && std::string_view(head, 4) ==
                    "\x7f"
                    "ELF")
    return true;
  return n >= 2 && head[0] == '#' && head[1] == '!';
}

void AddFile(Walk& w, int dir_fd, const char* name, const std::string& sandbox_path) {
  // O_NONBLOCK: a FIFO that slipped through between fstatat and open must not block us.
  UniqueFd fd(::openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) return;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  DroppedFile f;
  f.path = sandbox_path;
  f.size = static_cast<uint64_t>(st.st_size);
  if (f.size <= w.limits.max_hash_bytes) {
    auto hashes = HashFd(fd.get(), w.limits.max_hash_bytes);
    if (hashes.ok()) f.sha256 = hashes->sha256;
  }
  if (!w.skip_path.empty() && f.path == w.skip_path && f.sha256 == w.skip_sha256) return;
  f.executable = (st.st_mode & 0111) != 0 || LooksExecutable(fd.get());
  w.files.push_back(std::move(f));
}

void WalkDir(Walk& w, int dir_fd, const std::string& sandbox_path, int depth) {
  if (depth > w.limits.max_depth) return;
  int fd_for_dir = ::dup(dir_fd);
  if (fd_for_dir < 0) return;
  DIR* d = ::fdopendir(fd_for_dir);
  if (d == nullptr) {
    ::close(fd_for_dir);
    return;
  }
  std::vector<std::pair<std::string, unsigned char>> entries;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    entries.emplace_back(name, e->d_type);
  }
  ::closedir(d);
  std::sort(entries.begin(), entries.end());
  const std::string prefix = sandbox_path == "/" ? "/" : sandbox_path + "/";
  for (const auto& [name, type] : entries) {
    if (w.files.size() >= w.limits.max_files) return;
    unsigned char t = type;
    if (t == DT_UNKNOWN) {
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      t = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    if (t == DT_REG) {
      AddFile(w, dir_fd, name.c_str(), prefix + name);
    } else if (t == DT_DIR) {
      UniqueFd sub(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub) WalkDir(w, sub.get(), prefix + name, depth + 1);
    }
  }
}

}  // namespace

Result<std::vector<DroppedFile>> CollectDroppedFiles(const std::vector<WritableDir>& dirs,
                                                     const std::string& skip_path,
                                                     const std::string& skip_sha256,
                                                     const DroppedFileLimits& limits) {
  Walk w{limits, skip_path, skip_sha256, {}};
  for (const WritableDir& dir : dirs) {
    UniqueFd fd(::open(dir.host_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) continue;
      return ErrnoStatus("open " + dir.host_path);
    }
    WalkDir(w, fd.get(), dir.sandbox_path, 0);
  }
  std::sort(w.files.begin(), w.files.end(),
            [](const DroppedFile& a, const DroppedFile& b) { return a.path < b.path; });
  return std::move(w.files);
}

}  // namespace quell::sandbox
