// Test helpers: a complete description of a directory tree (every entry's type, mode, owner,
// mtime, content or link target, xattrs; directories' mtimes), to show that a removal and a
// restore leave a tree exactly as it was, and `diff -r` as a second opinion. Tests only.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "common/files.h"

namespace quell::agent::quarantine::testing {

inline std::string DescribeEntry(const std::string& path, bool with_dir_mtime) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "missing";
  std::ostringstream out;
  out << "mode=" << std::oct << (st.st_mode & 07777) << std::dec << " uid=" << st.st_uid
      << " gid=" << st.st_gid;
  if (S_ISDIR(st.st_mode)) {
    out << " dir";
    if (with_dir_mtime) out << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
    return out.str();
  }
  out << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
  if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    out << " symlink=" << std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
    return out.str();
  }
  auto content = ReadFile(path);
  out << " content=" << (content.ok() ? *content : "<unreadable>");
  char names[4096];
  ssize_t len = ::llistxattr(path.c_str(), names, sizeof names);
  for (ssize_t i = 0; i < len;) {
    std::string name(names + i);
    char value[4096];
    ssize_t vlen = ::lgetxattr(path.c_str(), name.c_str(), value, sizeof value);
    out << " xattr:" << name << "=" << std::string(value, vlen > 0 ? static_cast<size_t>(vlen) : 0);
    i += static_cast<ssize_t>(name.size()) + 1;
  }
  return out.str();
}

// relative path -> description, for everything under `root` (root itself excluded).
inline std::map<std::string, std::string> Snapshot(const std::string& root,
                                                   bool with_dir_mtime = true) {
  std::map<std::string, std::string> out;
  std::vector<std::string> pending = {""};
  while (!pending.empty()) {
    std::string rel = pending.back();
    pending.pop_back();
    DIR* d = ::opendir((root + rel).c_str());
    if (d == nullptr) continue;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string child = rel + "/" + name;
      out[child] = DescribeEntry(root + child, with_dir_mtime);
      struct stat st {};
      if (::lstat((root + child).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) pending.push_back(child);
    }
    ::closedir(d);
  }
  return out;
}

// A copy of `root` for `diff -r`, made with cp -a (keeps symlinks, modes, times).
inline bool CopyTree(const std::string& root, const std::string& to) {
  return std::system(("cp -a '" + root + "' '" + to + "'").c_str()) == 0;
}
inline int DiffTrees(const std::string& a, const std::string& b) {
  return std::system(("diff -r --no-dereference '" + a + "' '" + b + "' >&2").c_str());
}

inline void WriteFileAt(const std::string& path, const std::string& content, unsigned mode = 0644) {
  std::string dir = path.substr(0, path.rfind('/'));
  (void)MakeDirs(dir, 0755);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  ::chmod(path.c_str(), mode);
}

}  // namespace quell::agent::quarantine::testing
