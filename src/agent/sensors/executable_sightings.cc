#include "agent/sensors/executable_sightings.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "common/logging.h"

namespace quell::agent::sensors {
namespace {

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  if (n <= 0 || static_cast<size_t>(n) >= sizeof(buf)) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::vector<std::string> ProcessIds(const std::string& proc_root) {
  std::vector<std::string> pids;
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> dir(::opendir(proc_root.c_str()));
  if (!dir) return pids;
  while (dirent* e = ::readdir(dir.get())) {
    std::string name = e->d_name;
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
      pids.push_back(std::move(name));
    }
  }
  return pids;
}

int64_t Ns(const struct timespec& ts) { return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec; }

}  // namespace

ExecutableSightings::ExecutableSightings(SightingsOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  if (options_.own_mount_namespace.empty()) {
    options_.own_mount_namespace = ReadLink("/proc/self/ns/mnt");
  }
}

std::vector<quell::v1::FileSighting> ExecutableSightings::Collect() {
  const UnixMillis now = clock_.Now();
  std::vector<quell::v1::FileSighting> due;
  size_t hashed = 0;
  for (const std::string& pid : ProcessIds(options_.proc_root)) {
    const std::string base = options_.proc_root + "/" + pid;
    // Kernel threads have no exe; processes of other mount namespaces name paths this host
    // does not see. Both are skipped, as are processes that exit while we look.
    if (ReadLink(base + "/ns/mnt") != options_.own_mount_namespace) continue;
    std::string path = ReadLink(base + "/exe");
    if (path.empty() || path.front() != '/') continue;
    int fd = ::open((base + "/exe").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_size) > options_.max_file_bytes) {
      ::close(fd);
      continue;
    }
    Key key{st.st_dev, st.st_ino, st.st_size, Ns(st.st_mtim), Ns(st.st_ctim), path};
    auto it = known_.find(key);
    if (it == known_.end()) {
      if (hashed >= options_.max_new_files_per_pass) {
        ::close(fd);
        continue;
      }
      Result<FileHashes> hashes = HashFd(fd, options_.max_file_bytes);
      ++hashed;
      if (!hashes.ok()) {
        ::close(fd);
        continue;
      }
      it = known_.emplace(key, Known{.hashes = *hashes}).first;
    }
    ::close(fd);
    Known& k = it->second;
    k.last_seen = now;
    if (k.reported != 0 && now - k.reported < options_.report_again_after_ms) continue;
    k.reported = now;
    quell::v1::FileSighting s;
    s.set_sha256(k.hashes.sha256);
    s.set_sha1(k.hashes.sha1);
    s.set_md5(k.hashes.md5);
    s.set_path(path);
    s.set_source("exec");
    s.set_time_unix_ms(now);
    due.push_back(std::move(s));
  }
  // Forget files not seen running for a whole reporting period: the map stays as large as
  // what runs on the host, not as what ever ran.
  std::erase_if(known_, [&](const auto& entry) {
    return now - entry.second.last_seen > options_.report_again_after_ms;
  });
  return due;
}

}  // namespace quell::agent::sensors
