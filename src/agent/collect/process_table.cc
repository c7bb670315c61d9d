#include "agent/collect/process_table.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>
#include <utility>

#include "common/files.h"
#include "common/hash.h"
#include "common/unique_fd.h"

namespace quell::agent::collect {
namespace {

constexpr uint32_t kPfKthread = 0x00200000;  // include/linux/sched.h
constexpr std::string_view kDeletedSuffix = " (deleted)";
// Tree lines stay readable; the JSON keeps the whole command line.
constexpr size_t kMaxTreeCmdline = 4096;

template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string_view> SplitWhitespace(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\n') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// readlink, or "" with errno set.
std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

// Length of the valid UTF-8 sequence starting at s[i], 0 if invalid (overlong forms,
// surrogates and code points above U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (len == 0 || c > 0xF4 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  }
  if (c == 0xE0 && b(i + 1) < 0xA0) return 0;  // overlong
  if (c == 0xED && b(i + 1) >= 0xA0) return 0;  // surrogate
  if (c == 0xF0 && b(i + 1) < 0x90) return 0;  // overlong
  if (c == 0xF4 && b(i + 1) >= 0x90) return 0;  // > U+10FFFF
  return len;
}

void AppendHexByte(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 0xF];
}

struct ExeHash {
  std::string sha256;
  std::string error;
};

// Hashes each distinct executable once: (device, inode) identifies the file even after it
// was deleted, because the running process keeps the inode alive.
class ExeHasher {
 public:
  explicit ExeHasher(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  ExeHash Hash(const std::string& exe_link) {
    UniqueFd fd(::open(exe_link.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return {"", std::strerror(errno)};
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return {"", std::strerror(errno)};
    auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    ExeHash out;
    if (static_cast<uint64_t>(st.st_size) > max_bytes_) {
      out.error = "not hashed: larger than " + std::to_string(max_bytes_) + " bytes";
    } else if (auto h = HashFd(fd.get(), max_bytes_); h.ok()) {
      out.sha256 = h->sha256;
    } else {
      out.error = h.status().message();
    }
    cache_.emplace(key, out);
    return out;
  }

 private:
  uint64_t max_bytes_;
  std::map<std::pair<uint64_t, uint64_t>, ExeHash> cache_;
};

// Reads one process; nullopt if it is gone (or its stat is unreadable, which is the same to
// a responder: there is nothing to show).
std::optional<ProcessRecord> ReadProcess(const std::string& proc_root, pid_t pid,
                                         const std::map<uint32_t, std::string>& users,
                                         std::optional<int64_t> boot_time, long ticks_per_sec,
                                         const ProcessListOptions& options, ExeHasher& hasher) {
  const std::string base = proc_root + "/" + std::to_string(pid);
  auto stat_text = ReadFile(base + "/stat");
  if (!stat_text.ok()) return std::nullopt;
  auto stat = ParseProcStat(*stat_text);
  if (!stat) return std::nullopt;

  ProcessRecord p;
  p.pid = pid;
  p.ppid = stat->ppid;
  p.name = stat->comm;
  p.state = stat->state;
  p.kernel_thread = (stat->flags & kPfKthread) != 0;
  p.start_ticks = stat->start_ticks;
  if (boot_time && ticks_per_sec > 0) {
    p.start_time = *boot_time * 1000 +
                   static_cast<UnixMillis>(stat->start_ticks * 1000 / static_cast<uint64_t>(ticks_per_sec));
  }
  if (auto status = ReadFile(base + "/status"); status.ok()) {
    if (auto uids = ParseStatusUids(*status)) {
      p.uid_known = true;
      p.uid = uids->first;
      p.euid = uids->second;
      auto name = [&](uint32_t uid) {
        auto it = users.find(uid);
        return it != users.end() ? it->second : std::to_string(uid);
      };
      p.user = name(p.uid);
      p.euser = name(p.euid);
    }
  }
  if (auto cmdline = ReadFile(base + "/cmdline"); cmdline.ok()) p.args = SplitCmdline(*cmdline);
  p.cwd = ReadLink(base + "/cwd");
  if (p.kernel_thread) return p;

  p.exe = ReadLink(base + "/exe");
  const int exe_errno = p.exe.empty() ? errno : 0;
  if (p.exe.ends_with(kDeletedSuffix)) {
    p.exe.resize(p.exe.size() - kDeletedSuffix.size());
    p.exe_deleted = true;
  }
  // A zombie has no image (ENOENT): nothing to hash, and nothing worth an error.
  const bool stopped = options.stop_hashing && options.stop_hashing();
  if (options.hash_executables && !stopped && !(p.exe.empty() && exe_errno == ENOENT)) {
    ExeHash h = hasher.Hash(base + "/exe");
    p.exe_sha256 = std::move(h.sha256);
    p.exe_hash_error = std::move(h.error);
  } else if (stopped) {
    p.exe_hash_error = "not hashed: collection stopped";
  }
  return p;
}

std::string CommandLineText(const ProcessRecord& p) {
  if (p.args.empty()) return "[" + EscapeForText(p.name) + "]";
  std::string joined;
  for (const std::string& a : p.args) {
    if (!joined.empty()) joined += ' ';
    joined += a;
  }
  std::string out = EscapeForText(joined);
  if (out.size() > kMaxTreeCmdline) out = out.substr(0, kMaxTreeCmdline) + "...";
  return out;
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text) {
  // comm (field 2) may contain spaces and ')': fields resume after the last ')'.
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return std::nullopt;
  }
  std::vector<std::string_view> f = SplitWhitespace(text.substr(close + 1));
  // f[0] is field 3 (state); field N is f[N - 3]. starttime is field 22.
  if (f.size() < 20 || f[0].size() != 1) return std::nullopt;
  ProcStat out;
  out.comm = std::string(text.substr(open + 1, close - open - 1));
  out.state = f[0][0];
  if (!ParseNumber(f[1], out.ppid) || !ParseNumber(f[6], out.flags) ||
      !ParseNumber(f[19], out.start_ticks)) {
    return std::nullopt;
  }
  return out;
}

std::optional<std::pair<uint32_t, uint32_t>> ParseStatusUids(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? text.npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    if (!line.starts_with("Uid:")) continue;
    std::vector<std::string_view> f = SplitWhitespace(line.substr(4));
    uint32_t real = 0, effective = 0;
    if (f.size() < 2 || !ParseNumber(f[0], real) || !ParseNumber(f[1], effective)) {
      return std::nullopt;
    }
    return std::make_pair(real, effective);
  }
  return std::nullopt;
}

std::vector<std::string> SplitCmdline(std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\0', pos);
    if (end == std::string_view::npos) end = text.size();
    out.emplace_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

std::map<uint32_t, std::string> ParsePasswdNames(std::string_view text) {
  std::map<uint32_t, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? text.npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    // name:password:uid:...
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    size_t c3 = c2 == std::string_view::npos ? c2 : line.find(':', c2 + 1);
    if (c3 == std::string_view::npos || c1 == 0 || line.starts_with('#')) continue;
    uint32_t uid = 0;
    if (!ParseNumber(line.substr(c2 + 1, c3 - c2 - 1), uid)) continue;
    out.emplace(uid, std::string(line.substr(0, c1)));
  }
  return out;
}

std::optional<int64_t> ParseBootTime(std::string_view proc_stat_text) {
  size_t pos = 0;
  while (pos < proc_stat_text.size()) {
    size_t end = proc_stat_text.find('\n', pos);
    if (end == std::string_view::npos) end = proc_stat_text.size();
    std::string_view line = proc_stat_text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.starts_with("btime ")) continue;
    int64_t t = 0;
    std::vector<std::string_view> f = SplitWhitespace(line);
    if (f.size() == 2 && ParseNumber(f[1], t)) return t;
    return std::nullopt;
  }
  return std::nullopt;
}

std::string EscapeForText(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = Utf8SequenceLength(s, i);
    if (len == 0 || c < 0x20 || c == 0x7F || c == '\\') {
      AppendHexByte(out, c);
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = Utf8SequenceLength(s, i);
    if (len == 0) {
      AppendHexByte(out, static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

Result<std::vector<ProcessRecord>> ListProcesses(const std::string& proc_root,
                                                 const ProcessListOptions& options) {
  std::vector<pid_t> pids;
  {
    DIR* d = ::opendir(proc_root.c_str());
    if (d == nullptr) return ErrnoStatus("list " + proc_root);
    while (dirent* e = ::readdir(d)) {
      pid_t pid = 0;
      if (ParseNumber(std::string_view(e->d_name), pid) && pid > 0) pids.push_back(pid);
    }
    ::closedir(d);
  }
  std::sort(pids.begin(), pids.end());

  std::map<uint32_t, std::string> users;
  if (!options.passwd_path.empty()) {
    if (auto text = ReadFile(options.passwd_path); text.ok()) users = ParsePasswdNames(*text);
  }
  std::optional<int64_t> boot_time;
  if (auto text = ReadFile(proc_root + "/stat"); text.ok()) boot_time = ParseBootTime(*text);
  const long ticks_per_sec = ::sysconf(_SC_CLK_TCK);

  ExeHasher hasher(options.max_hash_bytes);
  std::vector<ProcessRecord> out;
  out.reserve(pids.size());
  for (pid_t pid : pids) {
    if (auto p = ReadProcess(proc_root, pid, users, boot_time, ticks_per_sec, options, hasher)) {
      out.push_back(std::move(*p));
    }
  }
  return out;
}

nlohmann::json ProcessesToJson(const std::vector<ProcessRecord>& processes) {
  nlohmann::json out = nlohmann::json::array();
  for (const ProcessRecord& p : processes) {
    nlohmann::json args = nlohmann::json::array();
    for (const std::string& a : p.args) args.push_back(ValidUtf8(a));
    nlohmann::json j = {
        {"pid", p.pid},
        {"ppid", p.ppid},
        {"name", ValidUtf8(p.name)},
        {"state", std::string(1, p.state)},
        {"kernel_thread", p.kernel_thread},
        {"uid", p.uid_known ? nlohmann::json(p.uid) : nlohmann::json()},
        {"euid", p.uid_known ? nlohmann::json(p.euid) : nlohmann::json()},
        {"user", ValidUtf8(p.user)},
        {"euser", ValidUtf8(p.euser)},
        {"cmdline", std::move(args)},
        {"exe", ValidUtf8(p.exe)},
        {"exe_deleted", p.exe_deleted},
        {"exe_sha256", p.exe_sha256},
        {"cwd", ValidUtf8(p.cwd)},
        {"start_ticks", p.start_ticks},
        {"start_time", p.start_time != 0 ? nlohmann::json(FormatIso8601(p.start_time)) : nlohmann::json()},
    };
    if (!p.exe_hash_error.empty()) j["exe_hash_error"] = ValidUtf8(p.exe_hash_error);
    out.push_back(std::move(j));
  }
  return out;
}

std::string ProcessTreeText(const std::vector<ProcessRecord>& processes) {
  std::map<pid_t, size_t> by_pid;
  for (size_t i = 0; i < processes.size(); ++i) by_pid.emplace(processes[i].pid, i);
  std::map<pid_t, std::vector<size_t>> children;  // ordered by pid via the sorted walk below
  std::vector<size_t> order(processes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return processes[a].pid < processes[b].pid; });
  std::vector<size_t> roots;
  for (size_t i : order) {
    const ProcessRecord& p = processes[i];
    if (p.ppid == p.pid || !by_pid.contains(p.ppid)) {
      roots.push_back(i);
    } else {
      children[p.ppid].push_back(i);
    }
  }

  std::string out;
  std::vector<bool> printed(processes.size(), false);
  auto walk = [&](size_t root) {
    std::vector<std::pair<size_t, size_t>> stack = {{root, 0}};  // (index, depth)
    while (!stack.empty()) {
      auto [i, depth] = stack.back();
      stack.pop_back();
      if (printed[i]) continue;
      printed[i] = true;
      const ProcessRecord& p = processes[i];
      out.append(depth * 2, ' ');
      out += std::to_string(p.pid);
      out += ' ';
      out += p.uid_known ? EscapeForText(p.euser) : "?";
      if (p.exe_deleted) out += " [DELETED EXE: " + EscapeForText(p.exe) + "]";
      out += ' ';
      out += CommandLineText(p);
      out += '\n';
      auto it = children.find(p.pid);
      if (it == children.end()) continue;
      for (auto c = it->second.rbegin(); c != it->second.rend(); ++c) stack.emplace_back(*c, depth + 1);
    }
  };
  for (size_t r : roots) walk(r);
  // A ppid cycle (only possible with inconsistent input) has no root; show it flat, not lose it.
  for (size_t i : order) {
    if (!printed[i]) walk(i);
  }
  return out;
}

}  // namespace quell::agent::collect
