#include "agent/scan/scan_targets.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unordered_set>

namespace quell::agent::scan {
namespace {

std::vector<std::string_view> SplitWs(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string UnescapeOctal(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
        s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string ReadSmallFile(const std::string& path, size_t limit = 1 << 20) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string out(limit, '\0');
  in.read(out.data(), static_cast<std::streamsize>(limit));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

std::string Join(const std::string& root, std::string_view abs) {
  if (root.empty() || root == "/") return std::string(abs);
  std::string r = root;
  while (!r.empty() && r.back() == '/') r.pop_back();
  return r + std::string(abs);
}

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

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

}  // namespace

std::vector<MountEntry> ParseMountInfo(std::string_view text) {
  std::vector<MountEntry> out;
  for (std::string_view line : Lines(text)) {
    std::vector<std::string_view> f = SplitWs(line);
    auto dash = std::find(f.begin(), f.end(), std::string_view("-"));
    if (f.size() < 7 || dash == f.end() || dash + 1 == f.end()) continue;
    MountEntry m;
    std::string_view mm = f[2];
    size_t colon = mm.find(':');
    if (colon == std::string_view::npos) continue;
    try {
      m.major = static_cast<uint32_t>(std::stoul(std::string(mm.substr(0, colon))));
      m.minor = static_cast<uint32_t>(std::stoul(std::string(mm.substr(colon + 1))));
    } catch (...) {
      continue;
    }
    m.mount_point = UnescapeOctal(f[4]);
    m.fs_type = std::string(*(dash + 1));
    out.push_back(std::move(m));
  }
  return out;
}

bool IsLocalFilesystem(std::string_view t) {
  static const std::unordered_set<std::string_view> kSkip = {
      // pseudo
      "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs",
      "tracefs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs",
      "binfmt_misc", "rpc_pipefs", "nsfs", "efivarfs", "selinuxfs", "ramfs", "nfsd", "sockfs",
      "pipefs",
      // network
      "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "ceph", "glusterfs", "9p",
      "davfs", "lustre", "gfs2", "ocfs2", "fuse.sshfs", "fuse.rclone", "fuse.s3fs",
      "fuse.glusterfs", "fuse.gvfsd-fuse", "fuse.davfs"};
  return !kSkip.contains(t);
}

std::set<dev_t> ExcludedDevices(const std::vector<MountEntry>& mounts) {
  std::set<dev_t> out;
  for (const MountEntry& m : mounts) {
    if (!IsLocalFilesystem(m.fs_type)) out.insert(makedev(m.major, m.minor));
  }
  return out;
}

std::vector<std::string> ParseUnitExecBinaries(std::string_view text) {
  static const std::string_view kKeys[] = {"ExecStart=", "ExecStartPre=", "ExecStartPost=",
                                           "ExecReload=", "ExecStop=", "ExecStopPost="};
  std::vector<std::string> out;
  for (std::string_view line : Lines(text)) {
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    for (std::string_view key : kKeys) {
      if (!line.starts_with(key)) continue;
      std::string_view cmd = line.substr(key.size());
      while (!cmd.empty() && std::string_view("-@:+! \t").find(cmd.front()) != std::string_view::npos) {
        cmd.remove_prefix(1);
      }
      std::vector<std::string_view> words = SplitWs(cmd);
      if (!words.empty() && words[0].starts_with('/')) out.emplace_back(words[0]);
    }
  }
  return out;
}

std::vector<std::string> ParseAuthorizedKeysCommands(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view line : Lines(text)) {
    size_t p = line.find("command=\"");
    if (p == std::string_view::npos) continue;
    std::string_view rest = line.substr(p + 9);
    size_t end = rest.find('"');
    std::vector<std::string_view> words = SplitWs(rest.substr(0, end));
    if (!words.empty() && words[0].starts_with('/')) out.emplace_back(words[0]);
  }
  return out;
}

std::vector<std::string> ParseLdPreload(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view line : Lines(text)) {
    line = line.substr(0, line.find('#'));
    std::string cleaned(line);
    std::replace(cleaned.begin(), cleaned.end(), ':', ' ');
    for (std::string_view w : SplitWs(cleaned)) out.emplace_back(w);
  }
  return out;
}

std::vector<ScanTarget> QuickScanTargets(const QuickScanOptions& o) {
  std::vector<ScanTarget> out;
  auto add = [&](const std::string& abs, bool recursive) {
    std::string p = Join(o.root, abs);
    struct stat st {};
    if (::lstat(p.c_str(), &st) == 0) out.push_back({p, "", recursive});
  };
  auto add_binary = [&](const std::string& abs) {
    if (abs.empty() || abs[0] != '/') return;
    add(abs, false);
  };

  if (o.include_processes) {
    for (const std::string& name : DirEntries(o.proc_root)) {
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string exe = o.proc_root + "/" + name + "/exe";
      char buf[4096];
      ssize_t n = ::readlink(exe.c_str(), buf, sizeof(buf) - 1);
      if (n <= 0) continue;  // kernel threads, exited processes, no permission
      std::string target(buf, static_cast<size_t>(n));
      // Opening /proc/<pid>/exe reaches the file even when it was deleted from disk.
      out.push_back({exe, target, false});
    }
  }

  // cron
  for (const char* p : {"/etc/crontab", "/etc/anacrontab"}) add(p, false);
  for (const char* p : {"/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
                        "/etc/cron.monthly", "/var/spool/cron"}) {
    add(p, true);
  }
  // systemd units and what they start
  for (const char* dir : {"/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system",
                          "/usr/lib/systemd/system", "/etc/systemd/user"}) {
    std::string d = Join(o.root, dir);
    if (!IsDir(d)) continue;
    out.push_back({d, "", true});
    for (const std::string& name : DirEntries(d)) {
      if (!name.ends_with(".service") && !name.ends_with(".timer") && !name.ends_with(".socket")) {
        continue;
      }
      for (const std::string& bin : ParseUnitExecBinaries(ReadSmallFile(d + "/" + name))) {
        add_binary(bin);
      }
    }
  }
  // rc files, shell profiles, preload
  add("/etc/rc.local", false);
  add("/etc/init.d", true);
  for (const char* p : {"/etc/profile", "/etc/bash.bashrc", "/etc/environment", "/etc/zsh/zshrc",
                        "/etc/ld.so.preload"}) {
    add(p, false);
  }
  add("/etc/profile.d", true);
  for (const std::string& lib : ParseLdPreload(ReadSmallFile(Join(o.root, "/etc/ld.so.preload")))) {
    add_binary(lib);
  }
  // temp dirs
  for (const char* p : {"/tmp", "/var/tmp", "/dev/shm"}) add(p, true);
  // homes: top level, Downloads, profiles, user units, authorized_keys and their commands
  std::vector<std::string> homes = {"/root"};
  for (const std::string& name : DirEntries(Join(o.root, "/home"))) homes.push_back("/home/" + name);
  for (const std::string& home : homes) {
    if (!IsDir(Join(o.root, home))) continue;
    add(home, false);
    add(home + "/Downloads", true);
    add(home + "/.config/systemd/user", true);
    add(home + "/.config/autostart", true);
    std::string keys = home + "/.ssh/authorized_keys";
    add(keys, false);
    for (const std::string& bin : ParseAuthorizedKeysCommands(ReadSmallFile(Join(o.root, keys)))) {
      add_binary(bin);
    }
  }
  return out;
}

Result<std::vector<FileItem>> EnumerateFiles(const std::vector<ScanTarget>& targets,
                                             const std::set<dev_t>& excluded, std::stop_token stop,
                                             WalkStats* stats) {
  WalkStats local;
  if (stats == nullptr) stats = &local;
  std::vector<FileItem> out;
  std::set<std::pair<dev_t, ino_t>> seen;
  auto add_file = [&](const std::string& open_path, const std::string& display,
                      const struct stat& st) {
    if (!seen.insert({st.st_dev, st.st_ino}).second) return;
    out.push_back(FileItem{
        .open_path = open_path,
        .display_path = display.empty() ? open_path : display,
        .dev = st.st_dev,
        .ino = st.st_ino,
        .size = static_cast<uint64_t>(st.st_size),
        .mtime_ns = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
        .ctime_ns = st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec,
    });
  };
  // Iterative depth-first walk; depth bounded so a pathological tree cannot recurse forever.
  struct Pending {
    std::string path;
    int depth;
  };
  constexpr int kMaxDepth = 64;
  for (const ScanTarget& t : targets) {
    if (stop.stop_requested()) return Cancelled("scan cancelled");
    struct stat st {};
    // Explicit targets may be symlinks (a unit's ExecStart, /proc/<pid>/exe): follow them.
    if (::stat(t.path.c_str(), &st) != 0) {
      ++stats->unreadable;
      continue;
    }
    if (excluded.contains(st.st_dev)) continue;
    if (S_ISREG(st.st_mode)) {
      add_file(t.path, t.display_path, st);
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      ++stats->special;
      continue;
    }
    std::vector<Pending> stack{{t.path, 0}};
    std::set<std::pair<dev_t, ino_t>> dirs_seen;
    while (!stack.empty()) {
      if (stop.stop_requested()) return Cancelled("scan cancelled");
      const std::string dir_path = stack.back().path;
      const int depth = stack.back().depth;
      stack.pop_back();
      const std::string base = dir_path == "/" ? "" : dir_path;
      for (const std::string& name : DirEntries(dir_path)) {
        std::string child = base + "/" + name;
        struct stat cst {};
        if (::lstat(child.c_str(), &cst) != 0) {
          ++stats->unreadable;
          continue;
        }
        if (excluded.contains(cst.st_dev)) continue;
        if (S_ISREG(cst.st_mode)) {
          add_file(child, "", cst);
        } else if (S_ISDIR(cst.st_mode)) {
          if (t.recursive && depth < kMaxDepth &&
              dirs_seen.insert({cst.st_dev, cst.st_ino}).second) {
            stack.push_back({child, depth + 1});
          }
        } else if (!S_ISLNK(cst.st_mode)) {
          ++stats->special;
        }
      }
    }
  }
  return out;
}

}  // namespace quell::agent::scan
