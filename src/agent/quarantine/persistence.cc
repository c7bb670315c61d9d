#include "agent/quarantine/persistence.h"

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "agent/scan/scan_targets.h"
#include "common/logging.h"

extern char** environ;

namespace quell::agent::quarantine {
namespace {

auto Log() {
  static auto log = Logger("agent.quarantine");
  return log;
}

enum class Mode { kLines, kDesktop, kUnit };

struct Source {
  std::string kind;
  std::string host_path;
  Mode mode = Mode::kLines;
  bool user_unit = false;
  std::string unit_dir;  // kUnit: the host dir holding it
};

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    out.emplace_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool IsRegular(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool IsDirNoFollow(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Splits into lines; the element after a final '\n' is "" so Join reproduces the text.
std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      out.emplace_back(text.substr(start));
      break;
    }
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}
std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    out += lines[i];
  }
  return out;
}

bool IsComment(std::string_view line) {
  size_t i = line.find_first_not_of(" \t");
  return i == std::string_view::npos || line[i] == '#';
}

std::vector<Source> Sources(const std::string& root) {
  std::vector<Source> out;
  auto add_file = [&](const std::string& kind, const std::string& host, Mode mode = Mode::kLines) {
    if (IsRegular(JoinRoot(root, host))) out.push_back({kind, host, mode});
  };
  auto add_dir = [&](const std::string& kind, const std::string& host_dir, Mode mode,
                     std::string_view suffix = "") {
    for (const std::string& name : DirEntries(JoinRoot(root, host_dir))) {
      if (!suffix.empty() && !name.ends_with(suffix)) continue;
      if (name.starts_with(".quell-")) continue;  // our own temp files
      add_file(kind, host_dir + "/" + name, mode);
    }
  };
  add_file("cron", "/etc/crontab");
  add_dir("cron", "/etc/cron.d", Mode::kLines);
  add_dir("cron", "/var/spool/cron/crontabs", Mode::kLines);
  add_file("rc.local", "/etc/rc.local");
  add_file("profile", "/etc/profile");
  add_dir("profile", "/etc/profile.d", Mode::kLines);
  add_file("profile", "/etc/bash.bashrc");
  add_file("ld.so.preload", "/etc/ld.so.preload");
  add_dir("xdg-autostart", "/etc/xdg/autostart", Mode::kDesktop, ".desktop");
  std::set<std::pair<dev_t, ino_t>> udev_seen;
  for (const char* d : {"/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d",
                        "/lib/udev/rules.d"}) {
    struct stat st {};
    if (::stat(JoinRoot(root, d).c_str(), &st) != 0 || !udev_seen.insert({st.st_dev, st.st_ino}).second) {
      continue;
    }
    add_dir("udev", d, Mode::kLines, ".rules");
  }
  auto add_units = [&](const std::string& dir, bool user) {
    for (const std::string& name : DirEntries(JoinRoot(root, dir))) {
      if (name.starts_with(".quell-")) continue;
      const std::string host = dir + "/" + name;
      if (!IsRegular(JoinRoot(root, host))) continue;
      out.push_back({"systemd", host, Mode::kUnit, user, dir});
    }
  };
  add_units("/etc/systemd/system", false);
  add_units("/usr/local/lib/systemd/system", false);
  for (const std::string& home : HomeDirs(root)) {
    for (const char* f : {"/.bashrc", "/.profile", "/.bash_profile"}) add_file("profile", home + f);
    for (const char* f : {"/.ssh/authorized_keys", "/.ssh/authorized_keys2"}) {
      add_file("authorized_keys", home + f);
    }
    add_dir("xdg-autostart", home + "/.config/autostart", Mode::kDesktop, ".desktop");
    add_units(home + "/.config/systemd/user", true);
  }
  return out;
}

// The command="..." value of an authorized_keys line, or "".
std::string_view KeyCommand(std::string_view line) {
  size_t p = line.find("command=\"");
  if (p == std::string_view::npos) return {};
  std::string_view rest = line.substr(p + 9);
  size_t end = 0;
  while (end < rest.size() && rest[end] != '"') end += rest[end] == '\\' ? 2 : 1;
  return rest.substr(0, std::min(end, rest.size()));
}

bool IsExecLine(std::string_view line) {
  size_t i = line.find_first_not_of(" \t");
  if (i == std::string_view::npos) return false;
  line.remove_prefix(i);
  return line.starts_with("Exec") && line.find('=') != std::string_view::npos;
}

// Line-level matches for kLines sources.
std::vector<LineChange> MatchLines(const Source& src, const std::vector<std::string>& lines,
                                   const std::string& path) {
  std::vector<LineChange> out;
  const size_t n = lines.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string& line = lines[i];
    if (i + 1 == n && line.empty()) break;
    if (IsComment(line)) continue;
    if (src.kind == "authorized_keys") {
      std::string_view cmd = KeyCommand(line);
      bool hit = LineNamesPath(cmd, path);
      for (const std::string& bin : scan::ParseAuthorizedKeysCommands(line)) hit |= bin == path;
      if (hit) out.push_back({i, line, true, ""});
    } else if (src.kind == "ld.so.preload") {
      std::vector<std::string> libs = scan::ParseLdPreload(line);
      if (std::find(libs.begin(), libs.end(), path) == libs.end()) continue;
      std::string rest;
      for (const std::string& l : libs) {
        if (l == path) continue;
        if (!rest.empty()) rest += ' ';
        rest += l;
      }
      if (rest.empty()) {
        out.push_back({i, line, true, ""});
      } else {
        out.push_back({i, line, false, rest});
      }
    } else if (src.kind == "udev") {
      if (line.find("RUN") != std::string::npos && LineNamesPath(line, path)) {
        out.push_back({i, line, true, ""});
      }
    } else if (LineNamesPath(line, path)) {
      out.push_back({i, line, true, ""});
    }
  }
  return out;
}

std::string Basename(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

// Symlinks that enable or alias `unit_host` (a unit file's host path).
std::vector<std::string> EnableSymlinks(const std::string& root, const std::vector<std::string>& dirs,
                                        const std::string& unit_host) {
  std::vector<std::string> out;
  const std::string name = Basename(unit_host);
  auto check = [&](const std::string& host) {
    const std::string fs = JoinRoot(root, host);
    struct stat st {};
    if (::lstat(fs.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return;
    char buf[4096];
    ssize_t n = ::readlink(fs.c_str(), buf, sizeof buf);
    if (n < 0) return;
    std::string target(buf, static_cast<size_t>(n));
    if (Basename(host) == name || target == unit_host || Basename(target) == name) out.push_back(host);
  };
  for (const std::string& dir : dirs) {
    for (const std::string& entry : DirEntries(JoinRoot(root, dir))) {
      const std::string host = dir + "/" + entry;
      if (entry.ends_with(".wants") || entry.ends_with(".requires") || entry.ends_with(".upholds")) {
        if (!IsDirNoFollow(JoinRoot(root, host))) continue;
        for (const std::string& link : DirEntries(JoinRoot(root, host))) check(host + "/" + link);
      } else if (entry != name) {
        check(host);  // an alias (Alias=) in the unit directory itself
      }
    }
  }
  return out;
}

Result<int> SpawnAndWait(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return ErrnoStatus("spawn " + argv[0], rc);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus("waitpid " + argv[0]);
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace

Result<int> RunCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) return InvalidArgument("empty command");
  return SpawnAndWait(argv);
}

std::vector<std::string> HomeDirs(const std::string& root) {
  std::vector<std::string> homes;
  if (IsDirNoFollow(JoinRoot(root, "/root"))) homes.push_back("/root");
  for (const std::string& name : DirEntries(JoinRoot(root, "/home"))) {
    if (IsDirNoFollow(JoinRoot(root, "/home/" + name))) homes.push_back("/home/" + name);
  }
  return homes;
}

bool LineNamesPath(std::string_view line, std::string_view path) {
  if (path.empty()) return false;
  std::vector<std::string> variants = {std::string(path)};
  if (path.find(' ') != std::string_view::npos) {
    std::string escaped;
    for (char c : path) {
      if (c == ' ') escaped += '\\';
      escaped += c;
    }
    variants.push_back(std::move(escaped));
  }
  static constexpr std::string_view kBefore = " \t\"'=;&|(`:,-@+!<>";
  static constexpr std::string_view kAfter = " \t\"';&|)`<>:,\r";
  for (const std::string& v : variants) {
    size_t pos = line.find(v);
    while (pos != std::string_view::npos) {
      const bool before_ok = pos == 0 || kBefore.find(line[pos - 1]) != std::string_view::npos;
      const size_t end = pos + v.size();
      const bool after_ok = end == line.size() || kAfter.find(line[end]) != std::string_view::npos;
      if (before_ok && after_ok) return true;
      pos = line.find(v, pos + 1);
    }
  }
  return false;
}

std::vector<PersistenceChange> FindPersistence(const PersistenceOptions& options,
                                               const std::string& host_path) {
  std::vector<PersistenceChange> out;
  if (host_path.find('\n') != std::string::npos) {
    // No line-oriented location can name a path containing a newline.
    return out;
  }
  const std::vector<Source> sources = Sources(options.root);
  std::vector<std::string> system_dirs = {"/etc/systemd/system", "/usr/local/lib/systemd/system"};
  for (const Source& src : sources) {
    const std::string fs = JoinRoot(options.root, src.host_path);
    auto state = CaptureFileState(fs, options.max_file_bytes);
    if (!state.ok()) continue;
    if (src.mode == Mode::kLines) {
      std::vector<std::string> lines = SplitLines(state->content);
      std::vector<LineChange> changes = MatchLines(src, lines, host_path);
      if (changes.empty()) continue;
      PersistenceChange c;
      c.kind = src.kind;
      c.location = src.host_path;
      for (const LineChange& lc : changes) {
        if (!c.detail.empty()) c.detail += "\n";
        c.detail += lc.old_line;
      }
      // Apply from the last line up so indices stay valid.
      for (auto it = changes.rbegin(); it != changes.rend(); ++it) {
        if (it->removed) {
          lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(it->index));
        } else {
          lines[it->index] = it->new_line;
        }
      }
      c.lines = std::move(changes);
      c.after = JoinLines(lines);
      c.before = std::move(*state);
      out.push_back(std::move(c));
    } else if (src.mode == Mode::kDesktop) {
      bool hit = false;
      for (const std::string& line : SplitLines(state->content)) {
        std::string_view l = line;
        if ((l.starts_with("Exec=") || l.starts_with("TryExec=")) && LineNamesPath(l, host_path)) hit = true;
      }
      if (!hit) continue;
      PersistenceChange c;
      c.kind = src.kind;
      c.location = src.host_path;
      c.detail = "autostart entry";
      c.remove_file = true;
      c.before = std::move(*state);
      out.push_back(std::move(c));
    } else {  // kUnit
      bool hit = false;
      for (const std::string& bin : scan::ParseUnitExecBinaries(state->content)) hit |= bin == host_path;
      for (const std::string& line : SplitLines(state->content)) {
        if (IsExecLine(line) && LineNamesPath(line, host_path)) hit = true;
      }
      if (!hit) continue;
      const std::string unit = Basename(src.host_path);
      std::vector<std::string> dirs = src.user_unit ? std::vector<std::string>{src.unit_dir} : system_dirs;
      for (const std::string& link : EnableSymlinks(options.root, dirs, src.host_path)) {
        auto ls = CaptureFileState(JoinRoot(options.root, link), options.max_file_bytes);
        if (!ls.ok()) continue;
        PersistenceChange c;
        c.kind = "systemd";
        c.location = link;
        c.detail = "enable symlink -> " + ls->content;
        c.unit = unit;
        c.user_unit = src.user_unit;
        c.remove_file = true;
        c.before = std::move(*ls);
        out.push_back(std::move(c));
      }
      PersistenceChange c;
      c.kind = "systemd";
      c.location = src.host_path;
      c.detail = "unit file";
      c.unit = unit;
      c.user_unit = src.user_unit;
      c.remove_file = true;
      c.before = std::move(*state);
      out.push_back(std::move(c));
    }
  }
  return out;
}

Status RemovePersistence(const PersistenceOptions& options, const PersistenceChange& change) {
  auto current = CaptureFileState(change.before.path, options.max_file_bytes);
  if (change.remove_file) {
    if (!current.ok()) {
      if (current.status().code() == StatusCode::kNotFound) return Status::Ok();
      return current.status();
    }
    if (!current->SameContent(change.before)) {
      return FailedPrecondition(change.location + " changed since it was examined; not removed");
    }
    return RemovePath(change.before.path);
  }
  if (!current.ok()) return current.status().WithContext(change.location);
  if (current->content == change.after) return Status::Ok();
  if (current->content != change.before.content) {
    return FailedPrecondition(change.location + " changed since it was examined; not edited");
  }
  return PutFileState(change.before, change.after, /*restore_times=*/false);
}

Status RestorePersistence(const PersistenceOptions& options, const PersistenceChange& change) {
  auto current = CaptureFileState(change.before.path, options.max_file_bytes);
  if (!current.ok()) {
    if (current.status().code() != StatusCode::kNotFound) return current.status();
    return PutFileState(change.before, std::nullopt, /*restore_times=*/true);
  }
  if (current->SameContent(change.before)) return Status::Ok();
  if (change.remove_file) {
    return AlreadyExists(change.location + " now holds something else; not overwritten");
  }
  if (current->content == change.after) {
    return PutFileState(change.before, std::nullopt, /*restore_times=*/true);
  }
  // Edited since: re-insert what was removed into the current content.
  std::vector<std::string> lines = SplitLines(current->content);
  for (const LineChange& lc : change.lines) {
    if (!lc.removed) {
      auto it = std::find(lines.begin(), lines.end(), lc.new_line);
      if (it != lines.end()) {
        *it = lc.old_line;
        continue;
      }
    }
    size_t at = std::min(lc.index, lines.empty() ? 0 : lines.size() - 1);
    lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(at), lc.old_line);
  }
  Log()->warn("{} was edited after the quarantine removed lines from it; re-inserting them",
              change.location);
  return PutFileState(*current, JoinLines(lines), /*restore_times=*/false);
}

nlohmann::json PersistenceChangeToJson(const PersistenceChange& c) {
  nlohmann::json lines = nlohmann::json::array();
  for (const LineChange& l : c.lines) {
    lines.push_back({{"index", l.index},
                     {"old", BytesToJson(l.old_line)},
                     {"removed", l.removed},
                     {"new", BytesToJson(l.new_line)}});
  }
  return {{"kind", c.kind},
          {"location", BytesToJson(c.location)},
          {"detail", BytesToJson(c.detail)},
          {"unit", BytesToJson(c.unit)},
          {"userUnit", c.user_unit},
          {"removeFile", c.remove_file},
          {"lines", std::move(lines)},
          {"before", FileStateToJson(c.before)},
          {"after", BytesToJson(c.after)}};
}

Result<PersistenceChange> PersistenceChangeFromJson(const nlohmann::json& j) {
  try {
    PersistenceChange c;
    c.kind = j.at("kind").get<std::string>();
    QUELL_ASSIGN_OR_RETURN(c.location, BytesFromJson(j.at("location")));
    QUELL_ASSIGN_OR_RETURN(c.detail, BytesFromJson(j.at("detail")));
    QUELL_ASSIGN_OR_RETURN(c.unit, BytesFromJson(j.at("unit")));
    c.user_unit = j.at("userUnit").get<bool>();
    c.remove_file = j.at("removeFile").get<bool>();
    for (const auto& l : j.at("lines")) {
      LineChange lc;
      lc.index = l.at("index").get<size_t>();
      QUELL_ASSIGN_OR_RETURN(lc.old_line, BytesFromJson(l.at("old")));
      lc.removed = l.at("removed").get<bool>();
      QUELL_ASSIGN_OR_RETURN(lc.new_line, BytesFromJson(l.at("new")));
      c.lines.push_back(std::move(lc));
    }
    QUELL_ASSIGN_OR_RETURN(c.before, FileStateFromJson(j.at("before")));
    QUELL_ASSIGN_OR_RETURN(c.after, BytesFromJson(j.at("after")));
    return c;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("malformed persistence record: ") + e.what());
  }
}

std::vector<std::string> PathsNamedByPersistence(const PersistenceOptions& options) {
  std::set<std::string> out;
  for (const Source& src : Sources(options.root)) {
    auto state = CaptureFileState(JoinRoot(options.root, src.host_path), options.max_file_bytes);
    if (!state.ok() || state->type != FileState::Type::kRegular) continue;
    for (const std::string& line : SplitLines(state->content)) {
      if (IsComment(line)) continue;
      size_t i = 0;
      while ((i = line.find('/', i)) != std::string::npos) {
        const bool start_ok = i == 0 || std::string_view(" \t\"'=;&|(`:,-@+!").find(line[i - 1]) !=
                                            std::string_view::npos;
        size_t end = line.find_first_of(" \t\"';&|)`<>:,", i);
        if (end == std::string::npos) end = line.size();
        if (start_ok && end - i > 1) out.insert(line.substr(i, end - i));
        i = end;
      }
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace quell::agent::quarantine
