#include "agent/restriction/mount_table.h"

#include <set>
#include <sstream>

namespace quell::agent {
namespace {

std::string DecodeOctal(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() &&
        s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
        s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<MountEntry> ParseMountInfo(std::string_view text) {
  std::vector<MountEntry> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    // id parent major:minor root mount_point options [optional...] - fstype source superopts
    std::vector<std::string_view> fields;
    size_t p = 0;
    while (p < line.size()) {
      size_t q = line.find(' ', p);
      if (q == std::string_view::npos) q = line.size();
      if (q > p) fields.push_back(line.substr(p, q - p));
      p = q + 1;
    }
    if (fields.size() < 7) continue;
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash + 1 >= fields.size()) continue;
    out.push_back(MountEntry{DecodeOctal(fields[4]), std::string(fields[dash + 1])});
  }
  return out;
}

bool IsGuardedFsType(std::string_view t) {
  static const std::set<std::string_view> kSkip = {
      "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs",
      "securityfs", "pstore", "bpf", "configfs", "fusectl", "hugetlbfs", "autofs",
      "binfmt_misc", "nsfs", "rpc_pipefs", "efivarfs", "selinuxfs",
      // network filesystems
      "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "9p", "afs", "glusterfs", "lustre"};
  if (t.starts_with("fuse.") || t == "fuse") return false;
  return !kSkip.contains(t);
}

std::vector<std::string> GuardedMountPoints(const std::vector<MountEntry>& mounts) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const MountEntry& m : mounts) {
    if (!IsGuardedFsType(m.fs_type)) continue;
    if (seen.insert(m.mount_point).second) out.push_back(m.mount_point);
  }
  return out;
}

}  // namespace quell::agent
