#include "agent/scan/scan_targets.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "agent/scan/testing/scan_corpus.h"

namespace quell::agent::scan {
namespace {

using quell::testing::TempDir;
using testing::WriteText;

TEST(ParseMountInfoTest, ReadsDeviceMountPointAndType) {
  const char* text =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
      "24 22 0:45 / /mnt/my\\040disk rw - xfs /dev/sdb1 rw\n"
      "25 22 0:50 / /srv/nfs rw master:3 - nfs4 host:/export rw\n"
      "garbage line\n";
  auto m = ParseMountInfo(text);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].major, 8u);
  EXPECT_EQ(m[0].minor, 1u);
  EXPECT_EQ(m[0].fs_type, "ext4");
  EXPECT_EQ(m[2].mount_point, "/mnt/my disk");
  auto excluded = ExcludedDevices(m);
  EXPECT_TRUE(excluded.contains(makedev(0, 21)));   // proc
  EXPECT_TRUE(excluded.contains(makedev(0, 50)));   // nfs4
  EXPECT_FALSE(excluded.contains(makedev(8, 1)));   // ext4
  EXPECT_FALSE(excluded.contains(makedev(0, 45)));  // xfs
}

TEST(IsLocalFilesystemTest, SkipsPseudoAndNetwork) {
  for (const char* t : {"proc", "sysfs", "cgroup2", "devtmpfs", "nfs", "cifs", "fuse.sshfs"}) {
    EXPECT_FALSE(IsLocalFilesystem(t)) << t;
  }
  for (const char* t : {"ext4", "xfs", "btrfs", "tmpfs", "overlay", "vfat"}) {
    EXPECT_TRUE(IsLocalFilesystem(t)) << t;
  }
}

TEST(ParsersTest, UnitExecLinesAuthorizedKeysAndPreload) {
  EXPECT_EQ(ParseUnitExecBinaries("[Service]\nExecStart=-/usr/bin/evil --flag\n"
                                  "  ExecStartPre=@/opt/pre pre\nExecStop=relative\nUser=x\n"),
            (std::vector<std::string>{"/usr/bin/evil", "/opt/pre"}));
  EXPECT_EQ(ParseAuthorizedKeysCommands(
                "command=\"/usr/local/bin/backdoor -x\",no-pty ssh-ed25519 AAAA k\n"
                "ssh-rsa AAAA plain\n"),
            (std::vector<std::string>{"/usr/local/bin/backdoor"}));
  EXPECT_EQ(ParseLdPreload("# comment\n/lib/a.so /lib/b.so:/lib/c.so\n"),
            (std::vector<std::string>{"/lib/a.so", "/lib/b.so", "/lib/c.so"}));
}

std::vector<std::string> QuickFiles(const std::string& root) {
  auto targets = QuickScanTargets({.root = root, .include_processes = false});
  auto files = EnumerateFiles(targets, {}, {}, nullptr);
  std::vector<std::string> out;
  for (const auto& f : *files) out.push_back(f.open_path.substr(root.size()));
  std::sort(out.begin(), out.end());
  return out;
}

TEST(QuickScanTargetsTest, CoversPersistenceTempAndHomesButNotTheRest) {
  TempDir root;
  const std::string r = root.path();
  WriteText(r + "/etc/cron.d/job", "* * * * * root /opt/x\n");
  WriteText(r + "/etc/systemd/system/evil.service", "[Service]\nExecStart=/opt/svc/run\n");
  WriteText(r + "/opt/svc/run", "binary named by a unit\n");
  WriteText(r + "/opt/svc/other", "not named by anything\n");
  WriteText(r + "/etc/ld.so.preload", "/opt/lib/hook.so\n");
  WriteText(r + "/opt/lib/hook.so", "preloaded\n");
  WriteText(r + "/etc/profile.d/x.sh", "export A=1\n");
  WriteText(r + "/tmp/a/b/deep", "temp\n");
  WriteText(r + "/dev/shm/s", "shm\n");
  WriteText(r + "/home/alice/top", "home top\n");
  WriteText(r + "/home/alice/projects/nested", "not at the top of the home\n");
  WriteText(r + "/home/alice/Downloads/d/payload", "download\n");
  WriteText(r + "/home/alice/.ssh/authorized_keys", "command=\"/opt/keycmd\" ssh-ed25519 AAAA\n");
  WriteText(r + "/opt/keycmd", "forced command\n");
  WriteText(r + "/usr/share/doc/readme", "elsewhere\n");

  const std::vector<std::string> expected = {
      "/dev/shm/s",
      "/etc/cron.d/job",
      "/etc/ld.so.preload",
      "/etc/profile.d/x.sh",
      "/etc/systemd/system/evil.service",
      "/home/alice/.ssh/authorized_keys",
      "/home/alice/Downloads/d/payload",
      "/home/alice/top",
      "/opt/keycmd",
      "/opt/lib/hook.so",
      "/opt/svc/run",
      "/tmp/a/b/deep",
  };
  EXPECT_EQ(QuickFiles(r), expected);
}

TEST(QuickScanTargetsTest, IncludesRunningExecutablesEvenWhenDeletedFromDisk) {
  TempDir dir;
  const std::string copy = dir / "sleeper";
  std::filesystem::copy_file("/bin/sleep", copy);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(copy.c_str(), "sleeper", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the exec to happen, then delete the binary from disk.
  for (int i = 0; i < 200; ++i) {
    char buf[4096];
    ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf);
    if (n > 0 && std::string(buf, static_cast<size_t>(n)) == copy) break;
    usleep(10000);
  }
  std::filesystem::remove(copy);
  auto targets = QuickScanTargets({.root = dir.path(), .include_processes = true});
  auto files = EnumerateFiles(targets, {}, {}, nullptr);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(files.ok());
  bool found = false;
  for (const auto& f : *files) {
    if (f.open_path == "/proc/" + std::to_string(pid) + "/exe") {
      found = true;
      EXPECT_EQ(f.display_path, copy + " (deleted)");
      EXPECT_GT(f.size, 0u);
    }
  }
  EXPECT_TRUE(found);
}

TEST(EnumerateFilesTest, NoSymlinkFollowingNoDuplicatesAndCancel) {
  TempDir dir;
  WriteText(dir / "a/file", "x");
  std::filesystem::create_symlink(dir / "a", dir / "link-to-a");
  std::filesystem::create_hard_link(dir / "a/file", dir / "hardlink");
  auto files = EnumerateFiles({{dir.path(), "", true}, {dir / "a", "", true}}, {}, {}, nullptr);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(files->size(), 1u);  // one inode, seen through three names

  std::stop_source stop;
  stop.request_stop();
  auto cancelled = EnumerateFiles({{dir.path(), "", true}}, {}, stop.get_token(), nullptr);
  EXPECT_EQ(cancelled.status().code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace quell::agent::scan
