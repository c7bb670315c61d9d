#include "agent/live/live_shell.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "agent/live/live_shell_internal.h"
#include "agent/live/safe_paths.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/unique_fd.h"

namespace quell::agent::live {

namespace shell_internal {

std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto line = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += "\n";
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
}

std::string Permissions(mode_t mode) {
  std::string s = "?---------";
  s[0] = S_ISREG(mode) ? '-' : S_ISDIR(mode) ? 'd' : S_ISLNK(mode) ? 'l' : S_ISFIFO(mode) ? 'p'
         : S_ISSOCK(mode) ? 's' : S_ISCHR(mode) ? 'c' : S_ISBLK(mode) ? 'b' : '?';
  static constexpr char kRwx[] = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (mode & (1u << (8 - i))) s[static_cast<size_t>(i) + 1] = kRwx[i];
  }
  if (mode & S_ISUID) s[3] = (mode & S_IXUSR) ? 's' : 'S';
  if (mode & S_ISGID) s[6] = (mode & S_IXGRP) ? 's' : 'S';
  if (mode & S_ISVTX) s[9] = (mode & S_IXOTH) ? 't' : 'T';
  return s;
}

std::string UserName(uid_t uid) {
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) return pw.pw_name;
  return std::to_string(uid);
}

std::string GroupName(gid_t gid) {
  struct group gr {};
  struct group* found = nullptr;
  char buf[8192];
  if (::getgrgid_r(gid, &gr, buf, sizeof buf, &found) == 0 && found != nullptr) return gr.gr_name;
  return std::to_string(gid);
}

std::string TimeIso(const struct timespec& ts) {
  return FormatIso8601(static_cast<UnixMillis>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000);
}

std::string Printable(std::string_view s) {
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size() && !(len == 1 && (b < 0x20 || b == 0x7f || b == '\\'));
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xF];
      ++i;
    }
  }
  return out;
}

bool IsLowerHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Status CheckArgCount(const std::vector<std::string>& argv, size_t min, size_t max,
                     const std::string& usage) {
  const size_t n = argv.empty() ? 0 : argv.size() - 1;
  if (n < min || n > max) return InvalidArgument("usage: " + usage);
  return Status::Ok();
}

}  // namespace shell_internal

using namespace shell_internal;
using Json = nlohmann::json;

namespace {

// Filesystems that hold no files worth finding (and can be huge or hang a walk).
const std::set<std::string>& PseudoFsTypes() {
  static const std::set<std::string> k = {
      "proc",      "sysfs",    "devtmpfs", "devpts",  "cgroup",    "cgroup2", "securityfs",
      "debugfs",   "tracefs",  "pstore",   "bpf",     "fusectl",   "configfs", "mqueue",
      "hugetlbfs", "autofs",   "binfmt_misc", "efivarfs", "nsfs",  "rpc_pipefs", "selinuxfs"};
  return k;
}

// "\040" and friends in /proc/self/mounts.
std::string UnescapeMount(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct(s.substr(i + 1, 3));
      if (oct.size() == 3 && std::all_of(oct.begin(), oct.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out += static_cast<char>(std::stoi(oct, nullptr, 8));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::set<std::string> PseudoMounts(const std::string& mounts_path) {
  std::set<std::string> out;
  auto text = ReadFile(mounts_path);
  if (!text.ok()) return out;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + pos, end - pos);
    pos = end + 1;
    std::vector<std::string_view> f;
    size_t a = 0;
    while (a < line.size() && f.size() < 3) {
      size_t b = line.find(' ', a);
      if (b == std::string_view::npos) b = line.size();
      f.push_back(line.substr(a, b - a));
      a = b + 1;
    }
    if (f.size() == 3 && PseudoFsTypes().contains(std::string(f[2]))) out.insert(UnescapeMount(f[1]));
  }
  return out;
}

struct Entry {
  std::string name;
  struct stat st {};
  std::string target;  // symlinks
};

Json EntryJson(const Entry& e) {
  Json j = {{"name", Printable(e.name)},
            {"type", FileTypeName(e.st.st_mode)},
            {"mode", Permissions(e.st.st_mode)},
            {"owner", UserName(e.st.st_uid)},
            {"group", GroupName(e.st.st_gid)},
            {"uid", e.st.st_uid},
            {"gid", e.st.st_gid},
            {"size", static_cast<uint64_t>(e.st.st_size)},
            {"mtime", TimeIso(e.st.st_mtim)}};
  if (S_ISLNK(e.st.st_mode)) j["target"] = Printable(e.target);
  return j;
}

std::vector<std::string> EntryRow(const Entry& e) {
  std::string name = Printable(e.name);
  if (S_ISLNK(e.st.st_mode)) name += " -> " + Printable(e.target);
  if (S_ISDIR(e.st.st_mode)) name += "/";
  return {Permissions(e.st.st_mode), UserName(e.st.st_uid), GroupName(e.st.st_gid),
          std::to_string(e.st.st_size), TimeIso(e.st.st_mtim), name};
}

std::string ReadLinkAt(int dirfd, const char* name) {
  char buf[4096];
  ssize_t n = ::readlinkat(dirfd, name, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

}  // namespace

std::string OwningDebianPackage(const std::string& dpkg_info_dir, const std::string& path) {
  DIR* dir = ::opendir(dpkg_info_dir.c_str());
  if (dir == nullptr) return "";
  std::vector<std::string> lists;
  while (dirent* d = ::readdir(dir)) {
    std::string name = d->d_name;
    if (name.size() > 5 && name.ends_with(".list")) lists.push_back(name);
  }
  ::closedir(dir);
  std::sort(lists.begin(), lists.end());
  for (const std::string& list : lists) {
    auto text = ReadFile(dpkg_info_dir + "/" + list);
    if (!text.ok()) continue;
    size_t pos = 0;
    while ((pos = text->find(path, pos)) != std::string::npos) {
      const bool starts = pos == 0 || (*text)[pos - 1] == '\n';
      const size_t end = pos + path.size();
      const bool ends = end == text->size() || (*text)[end] == '\n';
      if (starts && ends) return list.substr(0, list.size() - 5);
      pos = end;
    }
  }
  return "";
}

std::string LiveShell::Resolve(const std::string& cwd, const std::string& path) {
  if (path.empty()) return cwd;
  if (path[0] == '/') return NormalizeAbsolutePath(path);
  return NormalizeAbsolutePath(cwd + "/" + path);
}

std::string LiveShell::cwd() const {
  std::lock_guard lock(mu_);
  return cwd_;
}

LiveCommandOutcome LiveShell::Execute(const LiveCommandRequest& request, std::stop_token stop,
                                      const std::function<void(std::string_view)>& out) {
  LiveCommandOutcome outcome;
  Ctx c{request, std::move(stop), out, outcome, cwd()};
  if (request.argv.empty()) {
    outcome.status = InvalidArgument("empty command");
    return outcome;
  }
  for (const std::string& a : request.argv) {
    if (a.find('\0') != std::string::npos) {
      outcome.status = InvalidArgument("an argument contains a NUL character");
      return outcome;
    }
  }
  const std::string& name = request.argv[0];
  using Fn = Status (LiveShell::*)(Ctx&);
  static const std::map<std::string, Fn> kCommands = {
      {"cd", &LiveShell::Cd},
      {"pwd", &LiveShell::Pwd},
      {"ls", &LiveShell::Ls},
      {"dir", &LiveShell::Ls},
      {"fileinfo", &LiveShell::FileInfo},
      {"findfile", &LiveShell::FindFile},
      {"getfile", &LiveShell::GetFile},
      {"putfile", &LiveShell::PutFile},
      {"run", &LiveShell::Run},
      {"processes", &LiveShell::Processes},
      {"connections", &LiveShell::Connections},
      {"remediate", &LiveShell::Remediate},
      {"undo", &LiveShell::Undo},
  };
  if (name == "persistence" || name == "services" || name == "scheduledtasks") {
    outcome.status = CheckArgCount(request.argv, 0, 0, name);
    if (outcome.status.ok()) outcome.status = Collected(c, name);
  } else if (auto it = kCommands.find(name); it != kCommands.end()) {
    outcome.status = (this->*(it->second))(c);
  } else {
    outcome.status = InvalidArgument("unknown command '" + Printable(name) + "'");
  }
  if (!outcome.status.ok() && outcome.status.code() != StatusCode::kCancelled &&
      outcome.status.code() != StatusCode::kDeadlineExceeded && c.stop.stop_requested()) {
    outcome.status = Cancelled("cancelled: " + outcome.status.message());
  }
  return outcome;
}

Status LiveShell::Cd(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 0, 1, "cd [directory]"));
  const std::string target = c.argv().size() > 1 ? Resolve(c.cwd, c.argv()[1]) : "/";
  struct stat st {};
  if (::stat(target.c_str(), &st) != 0) return ErrnoStatus("cd " + Printable(target));
  if (!S_ISDIR(st.st_mode)) return FailedPrecondition(Printable(target) + " is not a directory");
  {
    std::lock_guard lock(mu_);
    cwd_ = target;
  }
  if (c.req.json) c.PrintJson({{"cwd", Printable(target)}});
  return Status::Ok();
}

Status LiveShell::Pwd(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 0, 0, "pwd"));
  if (c.req.json) {
    c.PrintJson({{"cwd", Printable(c.cwd)}});
  } else {
    c.Print(Printable(c.cwd) + "\n");
  }
  return Status::Ok();
}

Status LiveShell::Ls(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 0, 1, c.argv()[0] + " [path]"));
  const std::string path = c.argv().size() > 1 ? Resolve(c.cwd, c.argv()[1]) : c.cwd;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && ::lstat(path.c_str(), &st) != 0) {
    return ErrnoStatus(c.argv()[0] + " " + Printable(path));
  }
  std::vector<Entry> entries;
  if (S_ISDIR(st.st_mode)) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return ErrnoStatus(c.argv()[0] + " " + Printable(path));
    DIR* dir = ::fdopendir(::dup(fd.get()));
    if (dir == nullptr) return ErrnoStatus("opendir " + Printable(path));
    while (dirent* d = ::readdir(dir)) {
      if (c.stop.stop_requested()) break;
      const std::string name = d->d_name;
      if (name == "." || name == "..") continue;
      Entry e{name, {}, ""};
      if (::fstatat(fd.get(), name.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISLNK(e.st.st_mode)) e.target = ReadLinkAt(fd.get(), name.c_str());
      entries.push_back(std::move(e));
    }
    ::closedir(dir);
    if (c.stop.stop_requested()) return Cancelled("cancelled");
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.name < b.name; });
  } else {
    Entry e{path, {}, ""};
    if (::lstat(path.c_str(), &e.st) != 0) return ErrnoStatus(c.argv()[0] + " " + Printable(path));
    if (S_ISLNK(e.st.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
      if (n > 0) e.target.assign(buf, static_cast<size_t>(n));
    }
    entries.push_back(std::move(e));
  }
  if (c.req.json) {
    Json list = Json::array();
    for (const Entry& e : entries) list.push_back(EntryJson(e));
    c.PrintJson({{"path", Printable(path)}, {"entries", std::move(list)}});
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (const Entry& e : entries) rows.push_back(EntryRow(e));
  c.Print(Printable(path) + ": " + std::to_string(entries.size()) + " entries\n" +
          Table({"mode", "owner", "group", "size", "modified", "name"}, rows));
  return Status::Ok();
}

Status LiveShell::FileInfo(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 1, 1, "fileinfo <path>"));
  const std::string path = Resolve(c.cwd, c.argv()[1]);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus("fileinfo " + Printable(path));
  Json info = {{"path", Printable(path)},
               {"type", FileTypeName(st.st_mode)},
               {"size", static_cast<uint64_t>(st.st_size)},
               {"mode", Permissions(st.st_mode)},
               {"modeOctal", [&] {
                  char buf[8];
                  std::snprintf(buf, sizeof buf, "%04o", st.st_mode & 07777);
                  return std::string(buf);
                }()},
               {"owner", UserName(st.st_uid)},
               {"group", GroupName(st.st_gid)},
               {"uid", st.st_uid},
               {"gid", st.st_gid},
               {"inode", static_cast<uint64_t>(st.st_ino)},
               {"links", static_cast<uint64_t>(st.st_nlink)},
               {"atime", TimeIso(st.st_atim)},
               {"mtime", TimeIso(st.st_mtim)},
               {"ctime", TimeIso(st.st_ctim)}};
  if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    info["target"] = n < 0 ? "" : Printable(std::string_view(buf, static_cast<size_t>(n)));
  }
  if (S_ISREG(st.st_mode)) {
    // O_NONBLOCK: if the path was swapped for a fifo meanwhile, open does not hang.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat fst {};
    if (!fd || ::fstat(fd.get(), &fst) != 0 || !S_ISREG(fst.st_mode)) {
      info["hashError"] = "cannot open the file";
    } else if (auto h = HashFd(fd.get()); h.ok()) {
      info["sha256"] = h->sha256;
      info["sha1"] = h->sha1;
      info["md5"] = h->md5;
    } else {
      info["hashError"] = h.status().message();
    }
  }
  if (c.stop.stop_requested()) return Cancelled("cancelled");
  const std::string package = OwningDebianPackage(options_.dpkg_info_dir, path);
  info["package"] = package.empty() ? Json(nullptr) : Json(package);
  if (c.req.json) {
    c.PrintJson(info);
    return Status::Ok();
  }
  std::string text;
  for (const char* key : {"path", "type", "target", "size", "mode", "modeOctal", "owner", "group",
                          "uid", "gid", "inode", "links", "atime", "mtime", "ctime", "sha256",
                          "sha1", "md5", "hashError", "package"}) {
    if (!info.contains(key)) continue;
    const Json& v = info[key];
    std::string value = v.is_string() ? v.get<std::string>() : v.is_null() ? "(none)" : v.dump();
    if (std::string_view(key) == "package" && v.is_null()) value = "(not from a Debian package)";
    std::string label = key;
    label += ":";
    text += label + std::string(label.size() < 11 ? 11 - label.size() : 1, ' ') + value + "\n";
  }
  c.Print(text);
  return Status::Ok();
}

Status LiveShell::FindFile(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 1, 2, "findfile <name-or-glob> [directory]"));
  const std::string& pattern = c.argv()[1];
  const std::string start = c.argv().size() > 2 ? Resolve(c.cwd, c.argv()[2]) : "/";
  struct stat st {};
  if (::stat(start.c_str(), &st) != 0) return ErrnoStatus("findfile " + Printable(start));
  if (!S_ISDIR(st.st_mode)) return FailedPrecondition(Printable(start) + " is not a directory");
  if (IsPseudoFilesystemPath(start)) {
    return FailedPrecondition("refused: /proc, /sys and /dev are not searched");
  }
  const std::set<std::string> skip = PseudoMounts(options_.mounts_path);
  auto skipped = [&](const std::string& dir) {
    return IsPseudoFilesystemPath(dir) || skip.contains(dir);
  };
  if (!c.req.json) c.Print("matches for '" + Printable(pattern) + "' under " + Printable(start) + ":\n");
  Json matches = Json::array();
  size_t found = 0;
  bool capped = false;
  std::vector<std::string> stack = {start};
  while (!stack.empty() && !capped) {
    if (c.stop.stop_requested()) break;
    const std::string dir = std::move(stack.back());
    stack.pop_back();
    if (dir != start && skipped(dir)) continue;
    // The start may be a symlink to a directory (/var/run); nothing below it is followed.
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (dir == start ? 0 : O_NOFOLLOW)));
    if (!fd) continue;
    DIR* d = ::fdopendir(::dup(fd.get()));
    if (d == nullptr) continue;
    std::vector<std::string> subdirs;
    while (dirent* e = ::readdir(d)) {
      if (c.stop.stop_requested()) break;
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat est {};
      if (::fstatat(fd.get(), name.c_str(), &est, AT_SYMLINK_NOFOLLOW) != 0) continue;
      const std::string full = dir == "/" ? "/" + name : dir + "/" + name;
      if (S_ISDIR(est.st_mode)) subdirs.push_back(full);
      if (::fnmatch(pattern.c_str(), name.c_str(), 0) != 0) continue;
      if (found == options_.max_find_results) {
        capped = true;
        break;
      }
      ++found;
      Json m = {{"path", Printable(full)},
                {"type", FileTypeName(est.st_mode)},
                {"size", static_cast<uint64_t>(est.st_size)},
                {"mtime", TimeIso(est.st_mtim)}};
      if (c.req.json) {
        matches.push_back(std::move(m));
      } else {
        c.Print(Permissions(est.st_mode) + "  " + std::to_string(est.st_size) + "  " +
                TimeIso(est.st_mtim) + "  " + Printable(full) + "\n");
      }
    }
    ::closedir(d);
    // Reverse: the stack then visits subdirectories in directory order.
    std::sort(subdirs.rbegin(), subdirs.rend());
    for (std::string& s : subdirs) stack.push_back(std::move(s));
  }
  if (c.stop.stop_requested()) return Cancelled("cancelled after " + std::to_string(found) + " matches");
  if (c.req.json) {
    c.PrintJson({{"pattern", Printable(pattern)},
                 {"directory", Printable(start)},
                 {"matches", std::move(matches)},
                 {"truncated", capped}});
  } else {
    c.Print(std::to_string(found) + (found == 1 ? " match" : " matches") +
            (capped ? " (stopped at " + std::to_string(options_.max_find_results) + ")" : "") + "\n");
  }
  return Status::Ok();
}

Status LiveShell::GetFile(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 1, 1, "getfile <path>"));
  if (!options_.send) return FailedPrecondition("getfile is not available on this agent");
  const std::string path = Resolve(c.cwd, c.argv()[1]);
  QUELL_ASSIGN_OR_RETURN(ReadableFile file, CheckReadableFile(path, options_.max_get_file_bytes));
  const std::string artifact = "command-" + std::to_string(c.req.command_id);
  // Through the checked descriptor: /proc/self/fd/<n> reopens this very file.
  QUELL_ASSIGN_OR_RETURN(
      SentArtifact sent,
      options_.send(c.req.session_id, artifact, "/proc/self/fd/" + std::to_string(file.fd.get()),
                    c.stop, [](uint64_t, uint64_t) {}));
  c.outcome.artifact_name = artifact;
  c.outcome.artifact_size = sent.size;
  c.outcome.artifact_sha256 = sent.sha256;
  if (c.req.json) {
    c.PrintJson({{"path", Printable(file.path)},
                 {"artifact", artifact},
                 {"size", sent.size},
                 {"sha256", sent.sha256}});
  } else {
    c.Print("uploaded " + Printable(file.path) + " as " + artifact + ": " +
            std::to_string(sent.size) + " bytes, sha256 " + sent.sha256 + "\n");
  }
  return Status::Ok();
}

Status LiveShell::FetchLibrary(Ctx& c, const std::string& name, const std::string& dest,
                               unsigned mode) {
  if (!options_.fetch) return FailedPrecondition("library files are not available on this agent");
  if (!IsLowerHex64(c.req.library_sha256)) {
    return FailedPrecondition("the server sent no digest for library file '" + name + "'");
  }
  const size_t slash = dest.rfind('/');
  QUELL_RETURN_IF_ERROR(MakeDirs(dest.substr(0, slash), 0700));
  QUELL_RETURN_IF_ERROR(options_.fetch(c.req.session_id, name, c.req.library_sha256, dest, c.stop)
                            .WithContext("fetch library file '" + name + "'"));
  // Checked again rather than trusted: what runs as root must be what was uploaded.
  UniqueFd fd(::open(dest.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + dest);
  QUELL_ASSIGN_OR_RETURN(FileHashes got, HashFd(fd.get()));
  if (got.sha256 != c.req.library_sha256 || got.size != c.req.library_size) {
    (void)RemoveFile(dest);
    return FailedPrecondition("library file '" + name + "' does not match the library: sha256 " +
                              got.sha256 + ", " + std::to_string(got.size) +
                              " bytes; expected " + c.req.library_sha256 + ", " +
                              std::to_string(c.req.library_size) + " bytes");
  }
  if (::fchmod(fd.get(), mode) != 0) return ErrnoStatus("chmod " + dest);
  return Status::Ok();
}

Status LiveShell::PutFile(Ctx& c) {
  QUELL_RETURN_IF_ERROR(CheckArgCount(c.argv(), 1, 2, "putfile <library file> [-keep]"));
  std::string name;
  bool keep = false;
  for (size_t i = 1; i < c.argv().size(); ++i) {
    if (c.argv()[i] == "-keep") {
      keep = true;
    } else if (name.empty()) {
      name = c.argv()[i];
    } else {
      return InvalidArgument("usage: putfile <library file> [-keep]");
    }
  }
  if (!ValidLibraryName(name)) return InvalidArgument("'" + Printable(name) + "' is not a library file name");
  if (keep && name == "remediations.json") {
    return InvalidArgument("'remediations.json' cannot be kept: the agent's remediation journal has that name");
  }
  const std::string dest = options_.work_dir + (keep ? "/kept/" : "/files/") + name;
  QUELL_RETURN_IF_ERROR(FetchLibrary(c, name, dest, 0600));
  if (c.req.json) {
    c.PrintJson({{"name", name}, {"path", dest}, {"size", c.req.library_size},
                 {"sha256", c.req.library_sha256}, {"kept", keep}});
  } else {
    c.Print("put " + name + " at " + dest + " (" + std::to_string(c.req.library_size) +
            " bytes, sha256 " + c.req.library_sha256 + ")" +
            (keep ? "; kept across agent restarts" : "; removed when the agent restarts") + "\n");
  }
  return Status::Ok();
}

}  // namespace quell::agent::live
