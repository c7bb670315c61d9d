#include "agent/restriction/mount_table.h"

#include <gtest/gtest.h>

namespace quell::agent {
namespace {

constexpr const char* kMountInfo =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "23 22 0:21 / /proc rw,nosuid - proc proc rw\n"
    "24 22 0:22 / /tmp rw shared:5 master:2 - tmpfs tmpfs rw\n"
    "25 22 0:23 / /mnt/my\\040disk rw - xfs /dev/sdb1 rw\n"
    "26 22 0:24 / /net rw - nfs4 server:/x rw\n"
    "27 22 0:25 / /home/u/remote rw - fuse.sshfs u@h: rw\n"
    "28 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    "garbage line\n"
    "29 22 8:1 /usr/bin/x /usr/bin/tac rw - tmpfs tmpfs rw\n";

TEST(MountTable, ParsesMountPointsAndTypesDecodingOctalEscapes) {
  auto mounts = ParseMountInfo(kMountInfo);
  ASSERT_EQ(mounts.size(), 8u);
  EXPECT_EQ(mounts[0].mount_point, "/");
  EXPECT_EQ(mounts[0].fs_type, "ext4");
  EXPECT_EQ(mounts[2].fs_type, "tmpfs");  // optional fields before "-" skipped
  EXPECT_EQ(mounts[3].mount_point, "/mnt/my disk");
}

TEST(MountTable, GuardsLocalFilesystemsOnly) {
  auto points = GuardedMountPoints(ParseMountInfo(kMountInfo));
  EXPECT_EQ(points, (std::vector<std::string>{"/", "/tmp", "/mnt/my disk", "/usr/bin/tac"}));
  EXPECT_TRUE(IsGuardedFsType("overlay"));
  EXPECT_FALSE(IsGuardedFsType("sysfs"));
  EXPECT_FALSE(IsGuardedFsType("cifs"));
}

}  // namespace
}  // namespace quell::agent
