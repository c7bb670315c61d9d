#include "agent/collect/collect_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <set>

#include "agent/collect/secret_screen.h"
#include "agent/quarantine/file_state.h"
#include "agent/quarantine/persistence.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/unique_fd.h"

namespace quell::agent::collect::files {

// --- paths and files ------------------------------------------------------------------------

std::string Under(const CollectSources& s, std::string_view host) {
  return quarantine::JoinRoot(s.root, host);
}

std::string CopyName(std::string_view host) {
  while (!host.empty() && host.front() == '/') host.remove_prefix(1);
  return std::string(host);
}

std::optional<struct stat> LStat(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return st;
}

bool IsDirNoFollow(const std::string& path) {
  auto st = LStat(path);
  return st && S_ISDIR(st->st_mode);
}

std::vector<std::string> DirNames(const std::string& path) {
  std::vector<std::string> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return out;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return out;
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    out.emplace_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

Result<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    if (errno == ELOOP) return FailedPrecondition(path + " is a symbolic link (not followed)");
    return ErrnoStatus("open " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path);
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(path + " is not a regular file");
  std::string out;
  char buf[64 * 1024];
  while (out.size() < max_bytes) {
    ssize_t n = ::read(fd.get(), buf, std::min<uint64_t>(sizeof buf, max_bytes - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read " + path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> ReadAsStaged(const std::string& path, uint64_t max_bytes) {
  QUELL_ASSIGN_OR_RETURN(std::string text, ReadRegularFile(path, max_bytes));
  return RedactSecrets(text, nullptr);
}

FileDigest DigestAt(int dirfd, const char* name, uint64_t max_bytes) {
  FileDigest d;
  const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  UniqueFd fd(::openat(dirfd, name, flags | O_NOATIME));
  if (!fd && errno == EPERM) fd.Reset(::openat(dirfd, name, flags));
  if (!fd) {
    d.skipped = std::strerror(errno);
    return d;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    d.skipped = "not a regular file";
    return d;
  }
  char magic[4] = {};
  d.elf = ::pread(fd.get(), magic, 4, 0) == 4 && std::memcmp(magic, "\x7f" "ELF", 4) == 0;
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    d.skipped = "larger than " + std::to_string(max_bytes) + " bytes";
    return d;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    d.skipped = "sha256 unavailable";
    return d;
  }
  char buf[64 * 1024];
  uint64_t total = 0;
  off_t offset = 0;
  while (true) {
    ssize_t n = ::pread(fd.get(), buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      d.skipped = std::string("read failed: ") + std::strerror(errno);
      return d;
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) {  // grew while being read
      d.skipped = "larger than " + std::to_string(max_bytes) + " bytes";
      return d;
    }
    EVP_DigestUpdate(ctx.get(), buf, static_cast<size_t>(n));
    offset += n;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    d.sha256 += kHex[md[i] >> 4];
    d.sha256 += kHex[md[i] & 0xf];
  }
  return d;
}

FileDigest DigestFile(const std::string& path, uint64_t max_bytes) {
  return DigestAt(AT_FDCWD, path.c_str(), max_bytes);
}

std::string TypeName(mode_t mode) { return FileTypeName(mode); }

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string MtimeIso(const struct stat& st) {
  return FormatIso8601(static_cast<UnixMillis>(st.st_mtim.tv_sec) * 1000 +
                       st.st_mtim.tv_nsec / 1'000'000);
}

// --- text -----------------------------------------------------------------------------------

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

bool IsBlankOrComment(std::string_view line) {
  line = Trim(line);
  return line.empty() || line.front() == '#';
}

std::vector<std::string> ActiveLines(std::string_view text, size_t max_lines) {
  std::vector<std::string> out;
  for (std::string_view line : Lines(text)) {
    if (IsBlankOrComment(line)) continue;
    if (out.size() == max_lines) {
      out.push_back("[further lines omitted]");
      break;
    }
    out.emplace_back(Trim(line));
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line, size_t rest_index, size_t* rest_from) {
  std::vector<std::string_view> out;
  if (rest_from != nullptr) *rest_from = std::string_view::npos;
  size_t i = 0;
  while (true) {
    i = line.find_first_not_of(" \t", i);
    if (i == std::string_view::npos) break;
    if (rest_from != nullptr && out.size() == rest_index) *rest_from = i;
    size_t e = line.find_first_of(" \t", i);
    out.push_back(line.substr(i, e == std::string_view::npos ? std::string_view::npos : e - i));
    if (e == std::string_view::npos) break;
    i = e;
  }
  return out;
}

// --- copying --------------------------------------------------------------------------------

std::optional<std::string> CopyHostFile(const CollectSources& s, PackageStaging& out,
                                        std::string_view topic, const std::string& host,
                                        uint64_t max_text) {
  const std::string path = Under(s, host);
  auto st = LStat(path);
  if (!st || S_ISDIR(st->st_mode)) return std::nullopt;
  const std::string name = CopyName(host);
  if (!out.AddFileCopy(topic, name, path)) return std::nullopt;
  // The staged copy, not the host file: it is what the screen let through (a key block is one
  // marker line there, its body lines gone), and it cannot have changed since the copy.
  auto text = ReadRegularFile(out.dir() + "/" + std::string(topic) + "/" + name, max_text);
  if (!text.ok()) return std::nullopt;
  return std::move(text).value();
}

// --- users ----------------------------------------------------------------------------------

std::vector<PasswdEntry> ParsePasswd(std::string_view text) {
  std::vector<PasswdEntry> out;
  for (std::string_view line : Lines(text)) {
    if (line.empty() || line.front() == '#' || line.front() == '+' || line.front() == '-') continue;
    std::vector<std::string_view> f;
    size_t start = 0;
    while (true) {
      size_t c = line.find(':', start);
      f.push_back(line.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start));
      if (c == std::string_view::npos) break;
      start = c + 1;
    }
    if (f.size() != 7 || f[0].empty()) continue;
    PasswdEntry e;
    e.name = f[0];
    try {
      e.uid = static_cast<uint32_t>(std::stoul(std::string(f[2])));
      e.gid = static_cast<uint32_t>(std::stoul(std::string(f[3])));
    } catch (const std::exception&) {
      continue;
    }
    e.gecos = f[4];
    e.home = f[5];
    e.shell = f[6];
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<PasswdEntry> ReadPasswd(const CollectSources& s) {
  auto text = ReadRegularFile(Under(s, "/etc/passwd"), 16u << 20);
  return text.ok() ? ParsePasswd(*text) : std::vector<PasswdEntry>{};
}

std::map<uint32_t, std::string> UserNames(const std::vector<PasswdEntry>& users) {
  std::map<uint32_t, std::string> out;
  for (const PasswdEntry& u : users) out.emplace(u.uid, u.name);  // the first name wins
  return out;
}

std::string CleanHome(std::string_view home) {
  if (home.empty() || home.front() != '/') return "";
  std::string out;
  size_t i = 1;
  while (i <= home.size()) {
    size_t e = home.find('/', i);
    std::string_view part = home.substr(i, e == std::string_view::npos ? std::string_view::npos : e - i);
    if (part == "." || part == "..") return "";
    if (!part.empty()) out += "/" + std::string(part);
    if (e == std::string_view::npos) break;
    i = e + 1;
  }
  return out.empty() ? "/" : out;
}

std::string InHome(const std::string& home, std::string_view rel) {
  return (home == "/" ? std::string() : home) + "/" + std::string(rel);
}

std::vector<std::string> UserHomes(const CollectSources& s,
                                          const std::vector<PasswdEntry>& users) {
  std::set<std::string> homes;
  for (const PasswdEntry& u : users) {
    std::string h = CleanHome(u.home);
    struct stat st {};
    if (!h.empty() && ::stat(Under(s, h).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) homes.insert(h);
  }
  for (const std::string& h : quarantine::HomeDirs(s.root)) homes.insert(h);
  return {homes.begin(), homes.end()};
}

// --- systemd --------------------------------------------------------------------------------

std::vector<UnitSetting> ParseUnitFile(std::string_view text) {
  std::vector<UnitSetting> out;
  std::string section;
  std::vector<std::string_view> lines = Lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line(Trim(lines[i]));
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      size_t close = line.find(']');
      section = line.substr(1, close == std::string::npos ? std::string::npos : close - 1);
      continue;
    }
    while (!line.empty() && line.back() == '\\' && i + 1 < lines.size()) {
      line.pop_back();
      line += ' ';
      line += Trim(lines[++i]);
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    out.push_back({section, std::string(Trim(std::string_view(line).substr(0, eq))),
                   std::string(Trim(std::string_view(line).substr(eq + 1)))});
  }
  return out;
}

std::vector<UnitDir> SystemUnitDirs(const CollectSources& s) {
  static const UnitDir kDirs[] = {{"/etc/systemd/system", false},
                                  {"/run/systemd/system", false},
                                  {"/usr/local/lib/systemd/system", false},
                                  {"/usr/lib/systemd/system", true},
                                  {"/lib/systemd/system", true}};
  std::vector<UnitDir> out;
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const UnitDir& d : kDirs) {
    struct stat st {};
    if (::stat(Under(s, d.host).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
    out.push_back(d);
  }
  return out;
}

std::string UnitTemplate(const std::string& unit) {
  size_t at = unit.find('@');
  size_t dot = unit.rfind('.');
  if (at == std::string::npos || dot == std::string::npos || dot < at) return unit;
  return unit.substr(0, at + 1) + unit.substr(dot);
}

std::map<std::string, std::vector<std::string>> EnableLinks(const CollectSources& s,
                                                            const std::vector<std::string>& dirs) {
  std::map<std::string, std::vector<std::string>> out;
  for (const std::string& dir : dirs) {
    for (const std::string& sub : DirNames(Under(s, dir))) {
      if (!sub.ends_with(".wants") && !sub.ends_with(".requires") && !sub.ends_with(".upholds")) continue;
      const std::string host_sub = dir + "/" + sub;
      for (const std::string& name : DirNames(Under(s, host_sub))) {
        auto st = LStat(Under(s, host_sub + "/" + name));
        if (!st || !S_ISLNK(st->st_mode)) continue;
        const std::string link = host_sub + "/" + name;
        std::set<std::string> units = {name, UnitTemplate(name)};
        // A link may name a unit by another name than its file's (an alias): both count.
        const std::string target = ReadLink(Under(s, link));
        const std::string target_name = target.substr(target.rfind('/') + 1);
        if (!target_name.empty()) units.insert(target_name);
        for (const std::string& u : units) out[u].push_back(link);
      }
    }
  }
  return out;
}

// --- cron and at ----------------------------------------------------------------------------

bool IsEnvAssignment(std::string_view line) {
  line = Trim(line);
  if (line.empty() || !(std::isalpha(static_cast<unsigned char>(line.front())) || line.front() == '_')) {
    return false;
  }
  size_t eq = line.find('=');
  if (eq == std::string_view::npos) return false;
  for (char c : Trim(line.substr(0, eq))) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::vector<CronEntry> ParseCrontab(std::string_view text, bool system_format,
                                           std::string_view owner) {
  std::vector<CronEntry> out;
  std::vector<std::string_view> lines = Lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = Trim(lines[i]);
    if (IsBlankOrComment(line) || IsEnvAssignment(line)) continue;
    const size_t sched_fields = line.front() == '@' ? 1 : 5;
    const size_t user_fields = system_format ? 1 : 0;
    size_t rest = std::string_view::npos;
    std::vector<std::string_view> f = Fields(line, sched_fields + user_fields, &rest);
    CronEntry e;
    e.line = i + 1;
    e.user = system_format ? "" : std::string(owner);
    if (f.size() < sched_fields + user_fields + 1) {
      e.command = std::string(line);  // not a valid entry; shown whole
      out.push_back(std::move(e));
      continue;
    }
    size_t sched_end = f[sched_fields - 1].data() + f[sched_fields - 1].size() - line.data();
    e.schedule = std::string(line.substr(0, sched_end));
    if (system_format) e.user = std::string(f[sched_fields]);
    e.command = std::string(line.substr(rest));
    out.push_back(std::move(e));
  }
  return out;
}

AtJob ParseAtJob(std::string_view text) {
  AtJob job;
  std::vector<std::string_view> lines = Lines(text);
  size_t start = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view l = Trim(lines[i]);
    if (l.starts_with("# atrun uid=")) {
      std::string_view rest = l.substr(12);
      job.uid = std::string(rest.substr(0, rest.find_first_not_of("0123456789")));
    }
    if (l.starts_with("cd ") && l.ends_with("{")) {
      for (size_t j = i + 1; j < lines.size(); ++j) {
        if (Trim(lines[j]) == "}") {
          start = j + 1;
          break;
        }
      }
    }
  }
  std::string delimiter;
  for (size_t i = start; i < lines.size(); ++i) {
    std::string_view l = Trim(lines[i]);
    if (IsBlankOrComment(l)) continue;
    if (start == 0 && (IsEnvAssignment(l) || l.starts_with("umask ") || l.starts_with("export "))) continue;
    if (delimiter.empty() && l.starts_with("${SHELL:-/bin/sh} << ")) {
      delimiter = std::string(l.substr(21));
      if (delimiter.size() >= 2 && delimiter.front() == '\'' && delimiter.back() == '\'') {
        delimiter = delimiter.substr(1, delimiter.size() - 2);
      }
      continue;
    }
    if (!delimiter.empty() && l == delimiter) continue;
    job.commands.emplace_back(l);
  }
  return job;
}

// --- listing a tree -------------------------------------------------------------------------

namespace {

void ListEntry(int dirfd, const std::string& name, const std::string& host,
                      const struct stat& st, const TreeOptions& o,
                      const std::map<uint32_t, std::string>& owners, TreeListing& l) {
  nlohmann::json e = {{"path", host},
                      {"type", TypeName(st.st_mode)},
                      {"size", static_cast<uint64_t>(st.st_size)},
                      {"mode", OctalMode(st.st_mode)},
                      {"uid", st.st_uid},
                      {"gid", st.st_gid},
                      {"mtime", MtimeIso(st)}};
  auto owner = owners.find(st.st_uid);
  e["owner"] = owner != owners.end() ? owner->second : std::to_string(st.st_uid);
  std::string sha = "-";
  bool executable = false;
  std::string target;
  if (S_ISREG(st.st_mode)) {
    executable = (st.st_mode & 0111) != 0;
    if (o.hash) {
      FileDigest d = DigestAt(dirfd, name.c_str(), o.max_hash_bytes);
      if (!d.sha256.empty()) {
        e["sha256"] = d.sha256;
        sha = d.sha256;
      } else {
        e["sha256_skipped"] = d.skipped;
      }
      e["elf"] = d.elf;
      executable = executable || d.elf;
    }
    e["executable"] = executable;
  } else if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlinkat(dirfd, name.c_str(), buf, sizeof buf);
    target = n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
    e["target"] = target;
  }
  l.text += TypeName(st.st_mode) + " " + OctalMode(st.st_mode) + " " +
            e["owner"].get<std::string>() + " " + std::to_string(st.st_size) + " " +
            MtimeIso(st) + " " + sha + " " + (executable ? "x" : "-") + " " + host +
            (S_ISLNK(st.st_mode) ? " -> " + target : "") + "\n";
  l.entries.push_back(std::move(e));
  ++l.count;
}

// Lists the entries of the open directory `dirfd` (host path `host_dir`) and descends.
void WalkDir(int dirfd, const std::string& host_dir, int depth, const TreeOptions& o,
                    const std::map<uint32_t, std::string>& owners, PackageStaging& out,
                    TreeListing& l) {
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return;
  DIR* d = ::fdopendir(dup);
  if (d == nullptr) {
    ::close(dup);
    return;
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  const std::string prefix = host_dir == "/" ? "" : host_dir;
  for (const std::string& name : names) {
    if (l.count >= o.max_entries) {
      l.truncated = true;
      return;
    }
    if (out.Exhausted()) return;
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone
    const std::string host = prefix + "/" + name;
    ListEntry(dirfd, name, host, st, o, owners, l);
    if (S_ISDIR(st.st_mode) && depth + 1 < o.max_depth) {
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) {
        l.unreadable.emplace_back(host, std::strerror(errno));
        continue;
      }
      WalkDir(sub.get(), host, depth + 1, o, owners, out, l);
    }
  }
}

}  // namespace

bool WalkTree(const CollectSources& s, const std::string& host_root, const TreeOptions& o,
                     const std::map<uint32_t, std::string>& owners, PackageStaging& out,
                     TreeListing& l) {
  UniqueFd root(::open(Under(s, host_root).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root) return false;
  WalkDir(root.get(), host_root, 0, o, owners, out, l);
  return true;
}

}  // namespace quell::agent::collect::files
