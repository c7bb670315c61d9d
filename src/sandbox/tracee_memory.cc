#include "sandbox/tracee_memory.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "common/unique_fd.h"

namespace quell::sandbox {
namespace {

constexpr uint64_t kPage = 4096;

std::string ReadLink(const std::string& link) {
  char buf[4096];
  ssize_t n = readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<pid_t> StatusField(pid_t tid, std::string_view field, bool last) {
  std::ifstream in("/proc/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size(), field) != 0) continue;
    std::string values = line.substr(field.size());
    size_t end = values.find_last_not_of(" \t");
    if (end == std::string::npos) return std::nullopt;
    values.resize(end + 1);
    size_t start = last ? values.find_last_of(" \t") : values.find_first_not_of(" \t");
    start = (start == std::string::npos) ? 0 : (last ? start + 1 : start);
    try {
      return static_cast<pid_t>(std::stol(values.substr(start)));
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string ReadTraceeBytes(pid_t pid, uint64_t addr, size_t max_bytes) {
  std::string out;
  if (addr == 0) return out;
  out.resize(max_bytes);
  size_t done = 0;
  // Page by page: one iovec crossing into an unmapped page fails as a whole.
  while (done < max_bytes) {
    uint64_t at = addr + done;
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(kPage - at % kPage, max_bytes - done));
    iovec local{out.data() + done, chunk};
    iovec remote{reinterpret_cast<void*>(at), chunk};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < chunk) break;
  }
  out.resize(done);
  return out;
}

std::optional<std::string> ReadTraceeString(pid_t pid, uint64_t addr, size_t max_bytes) {
  if (addr == 0) return std::nullopt;
  std::string out;
  uint64_t at = addr;
  while (out.size() < max_bytes) {
    size_t chunk =
        static_cast<size_t>(std::min<uint64_t>(kPage - at % kPage, max_bytes - out.size()));
    std::string part = ReadTraceeBytes(pid, at, chunk);
    size_t nul = part.find('\0');
    if (nul != std::string::npos) return out + part.substr(0, nul);
    out += part;
    if (part.size() < chunk) return out.empty() ? std::nullopt : std::optional(out);
    at += chunk;
  }
  return out;
}

std::vector<std::string> ReadTraceeArgv(pid_t pid, uint64_t addr, size_t max_items,
                                        size_t max_item_bytes) {
  std::vector<std::string> out;
  if (addr == 0) return out;
  std::string pointers = ReadTraceeBytes(pid, addr, max_items * sizeof(uint64_t));
  for (size_t i = 0; i + sizeof(uint64_t) <= pointers.size(); i += sizeof(uint64_t)) {
    uint64_t p;
    std::memcpy(&p, pointers.data() + i, sizeof p);
    if (p == 0) break;
    out.push_back(ReadTraceeString(pid, p, max_item_bytes).value_or(""));
  }
  return out;
}

std::string TraceeCwd(pid_t pid) { return ReadLink("/proc/" + std::to_string(pid) + "/cwd"); }

std::string TraceeExe(pid_t pid) { return ReadLink("/proc/" + std::to_string(pid) + "/exe"); }

std::string TraceeFdPath(pid_t pid, int fd) {
  if (fd < 0) return "";
  return ReadLink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd));
}

std::string JoinTraceePath(const std::string& base, const std::string& path) {
  std::string joined = (!path.empty() && path[0] == '/') ? path
                       : path.empty()                    ? base
                                                         : base + "/" + path;
  std::string out;
  size_t i = 0;
  while (i < joined.size()) {
    size_t next = joined.find('/', i);
    if (next == std::string::npos) next = joined.size();
    std::string_view seg(joined.data() + i, next - i);
    if (!seg.empty() && seg != ".") {
      out += '/';
      out += seg;
    }
    i = next + 1;
  }
  return out.empty() ? "/" : out;
}

std::string ResolveTraceePath(pid_t pid, int dirfd, const std::string& path) {
  if (!path.empty() && path[0] == '/') return JoinTraceePath("/", path);
  std::string base = dirfd == AT_FDCWD ? TraceeCwd(pid) : TraceeFdPath(pid, dirfd);
  if (base.empty() || base[0] != '/') {
    // The cwd or fd is gone or not a path (a socket, "anon_inode:..."): keep what we know.
    return path;
  }
  return JoinTraceePath(base, path);
}

bool ExistsInTraceeRoot(pid_t pid, const std::string& abs_path) {
  std::string root_link = "/proc/" + std::to_string(pid) + "/root";
  UniqueFd root(open(root_link.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return false;
  std::string rel = abs_path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  if (rel.empty()) return true;
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, root.get(), rel.c_str(), &how, sizeof how);
  if (fd < 0) return false;
  close(static_cast<int>(fd));
  return true;
}

std::optional<pid_t> TraceeTgid(pid_t tid) { return StatusField(tid, "Tgid:", false); }
std::optional<pid_t> TraceeNamespacePid(pid_t tid) { return StatusField(tid, "NSpid:", true); }
std::optional<pid_t> TraceeParent(pid_t tid) { return StatusField(tid, "PPid:", false); }

std::optional<int> TraceeSocketType(pid_t pid, int fd) {
  if (fd < 0) return std::nullopt;
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return std::nullopt;
  UniqueFd copy(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!copy) return std::nullopt;
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(copy.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0) return std::nullopt;
  return type;
}

}  // namespace quell::sandbox
