#include "agent/live/safe_paths.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::live {
namespace {

constexpr uint64_t kMax = 1 << 20;

std::string Refusal(const std::string& path, uint64_t max = kMax) {
  auto r = CheckReadableFile(path, max);
  return r.ok() ? "accepted" : r.status().message();
}

TEST(NormalizeAbsolutePathTest, RemovesDotsAndSlashesLexically) {
  EXPECT_EQ(NormalizeAbsolutePath("/"), "/");
  EXPECT_EQ(NormalizeAbsolutePath("//a///b/"), "/a/b");
  EXPECT_EQ(NormalizeAbsolutePath("/a/./b/../c"), "/a/c");
  EXPECT_EQ(NormalizeAbsolutePath("/../../etc/passwd"), "/etc/passwd");
  EXPECT_EQ(NormalizeAbsolutePath("/tmp/../proc/self/status"), "/proc/self/status");
}

TEST(IsPseudoFilesystemPathTest, MatchesWholeComponentsOnly) {
  EXPECT_TRUE(IsPseudoFilesystemPath("/proc"));
  EXPECT_TRUE(IsPseudoFilesystemPath("/proc/1/environ"));
  EXPECT_TRUE(IsPseudoFilesystemPath("/sys/kernel/x"));
  EXPECT_TRUE(IsPseudoFilesystemPath("/dev/sda"));
  EXPECT_FALSE(IsPseudoFilesystemPath("/processes.txt"));
  EXPECT_FALSE(IsPseudoFilesystemPath("/devel/x"));
  EXPECT_FALSE(IsPseudoFilesystemPath("/home/proc/x"));
}

TEST(CheckReadableFileTest, OpensARegularFileAndReadsThroughTheFd) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "a.log", "hello").ok());
  auto f = CheckReadableFile(dir.path() + "/./sub/../a.log", kMax);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->path, dir / "a.log");
  EXPECT_EQ(f->st.st_size, 5);
  char buf[8] = {};
  EXPECT_EQ(::pread(f->fd.get(), buf, sizeof buf, 0), 5);
  EXPECT_STREQ(buf, "hello");
}

TEST(CheckReadableFileTest, RefusesRelativeAndPseudoFilesystemPaths) {
  EXPECT_EQ(Refusal("etc/passwd"), "not an absolute path");
  EXPECT_EQ(Refusal(""), "not an absolute path");
  EXPECT_EQ(Refusal("/proc/self/status"), "refused: /proc, /sys and /dev are not collected");
  EXPECT_EQ(Refusal("/tmp/../proc/self/status"), "refused: /proc, /sys and /dev are not collected");
  EXPECT_EQ(Refusal("/sys/kernel/notes"), "refused: /proc, /sys and /dev are not collected");
  EXPECT_EQ(Refusal("/dev/null"), "refused: /proc, /sys and /dev are not collected");
  EXPECT_EQ(Refusal(std::string("/etc/pass\0wd", 12)), "the path contains NUL");
  EXPECT_EQ(Refusal("/" + std::string(kMaxGetFilePathChars, 'a')),
            "the path is longer than 4096 characters");
}

TEST(CheckReadableFileTest, RefusesNonRegularFilesWithoutBlocking) {
  testing::TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(Refusal(dir / "fifo"), "is a fifo");  // would hang here if it opened the fifo
  EXPECT_EQ(Refusal(dir.path()), "is a directory");
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, (dir / "sock").c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(Refusal(dir / "sock"), "is a socket");
  ::close(s);
  if (::getuid() == 0) {
    ASSERT_EQ(::mknod((dir / "null").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
    EXPECT_EQ(Refusal(dir / "null"), "is a device");
  }
  EXPECT_EQ(Refusal(dir / "missing"), "no such file");
}

TEST(CheckReadableFileTest, SymlinksLoopsAndLinksIntoProc) {
  testing::TempDir dir;
  ASSERT_EQ(::symlink((dir / "b").c_str(), (dir / "a").c_str()), 0);
  ASSERT_EQ(::symlink((dir / "a").c_str(), (dir / "b").c_str()), 0);
  EXPECT_EQ(Refusal(dir / "a"), "symbolic link loop");
  EXPECT_EQ(Refusal(dir / "a/x"), "symbolic link loop");  // a loop in the middle

  ASSERT_EQ(::symlink("/proc/self/status", (dir / "status").c_str()), 0);
  EXPECT_EQ(Refusal(dir / "status"), "refused: /proc, /sys and /dev are not collected");
  ASSERT_EQ(::symlink("/proc/self", (dir / "self").c_str()), 0);
  EXPECT_EQ(Refusal(dir / "self/status"), "refused: /proc, /sys and /dev are not collected");

  ASSERT_TRUE(MakeDirs(dir / "real").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "real/f", "data").ok());
  ASSERT_EQ(::symlink((dir / "real").c_str(), (dir / "dirlink").c_str()), 0);
  ASSERT_EQ(::symlink((dir / "real/f").c_str(), (dir / "flink").c_str()), 0);
  auto mid = CheckReadableFile(dir / "dirlink/f", kMax);
  ASSERT_TRUE(mid.ok()) << mid.status().ToString();
  auto last = CheckReadableFile(dir / "flink", kMax);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(last->path, dir / "real/f");
  ASSERT_EQ(::symlink(".", (dir / "dotlink").c_str()), 0);
  EXPECT_EQ(Refusal(dir / "dotlink"), "is a directory");
}

TEST(CheckReadableFileTest, RefusesFilesOverTheSizeLimit) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "big", std::string(101, 'x')).ok());
  EXPECT_TRUE(CheckReadableFile(dir / "big", 101).ok());
  auto r = CheckReadableFile(dir / "big", 100);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(), "101 bytes, more than the limit of 100");
}

TEST(ValidLibraryNameTest, AcceptsDefenderStyleNamesOnly) {
  EXPECT_TRUE(ValidLibraryName("collect.sh"));
  EXPECT_TRUE(ValidLibraryName("a"));
  EXPECT_TRUE(ValidLibraryName("Tool_v1.2-x86_64"));
  EXPECT_TRUE(ValidLibraryName(std::string(128, 'a')));
  EXPECT_FALSE(ValidLibraryName(std::string(129, 'a')));
  EXPECT_FALSE(ValidLibraryName(""));
  EXPECT_FALSE(ValidLibraryName(".hidden"));
  EXPECT_FALSE(ValidLibraryName("a..b"));
  EXPECT_FALSE(ValidLibraryName("a/b"));
  EXPECT_FALSE(ValidLibraryName("a b"));
  EXPECT_FALSE(ValidLibraryName("naïve"));
}

}  // namespace
}  // namespace quell::agent::live
