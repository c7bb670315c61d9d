// The mounts the execution restriction guards: /proc/self/mountinfo parsed (pure) and the
// rule for which filesystem types are "local" (guarded) rather than pseudo or network.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace quell::agent {

struct MountEntry {
  std::string mount_point;  // octal escapes (\040 etc.) decoded
  std::string fs_type;
};

// Parses mountinfo text (proc(5)); malformed lines are skipped.
std::vector<MountEntry> ParseMountInfo(std::string_view text);

// True for filesystems a program can be executed from and that live on this host: disk
// filesystems, tmpfs, overlay. False for pseudo filesystems (proc, sysfs, cgroup, ...) and
// network filesystems (nfs, cifs, fuse.sshfs, ...), which are not marked.
bool IsGuardedFsType(std::string_view fs_type);

// The distinct mount points of guarded filesystems, in mountinfo order.
std::vector<std::string> GuardedMountPoints(const std::vector<MountEntry>& mounts);

}  // namespace quell::agent
