#include "sandbox/dropped_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::sandbox {
namespace {

void Write(const std::string& path, const std::string& data, mode_t mode = 0644) {
  std::ofstream(path) << data;
  ::chmod(path.c_str(), mode);
}

TEST(DroppedFilesTest, ListsRegularFilesWithHashesAsTheSampleSawThem) {
  testing::TempDir tmp, work;
  ::mkdir((tmp / "deep").c_str(), 0755);
  Write(tmp / "deep/payload",
        "\x7f"
        "ELF....",
        0600);  // ELF header: executable
  Write(tmp / "note.txt", "hello\n");
  Write(tmp / "run", "#!/bin/sh\n", 0644);               // a script: executable
  Write(tmp / "tool", "data", 0700);                     // x bit
  ::symlink("/etc/passwd", (tmp / "link").c_str());      // never followed
  ::mkfifo((tmp / "fifo").c_str(), 0644);                // never opened
  Write(work / "sample.sh", "#!/bin/sh\necho\n", 0755);  // the sample, unchanged: not dropped

  auto files = CollectDroppedFiles(
      {{tmp.path(), "/tmp"}, {work.path(), "/analysis"}, {"/nonexistent-quell-dir", "/run"}},
      "/analysis/sample.sh", Sha256Hex("#!/bin/sh\necho\n"));
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 4u);
  EXPECT_EQ((*files)[0].path, "/tmp/deep/payload");
  EXPECT_TRUE((*files)[0].executable);
  EXPECT_EQ((*files)[1].path, "/tmp/note.txt");
  EXPECT_EQ((*files)[1].size, 6u);
  EXPECT_EQ((*files)[1].sha256, Sha256Hex("hello\n"));
  EXPECT_FALSE((*files)[1].executable);
  EXPECT_EQ((*files)[2].path, "/tmp/run");
  EXPECT_TRUE((*files)[2].executable);
  EXPECT_EQ((*files)[3].path, "/tmp/tool");
  EXPECT_TRUE((*files)[3].executable);
}

TEST(DroppedFilesTest, AModifiedSampleIsListed) {
  testing::TempDir work;
  Write(work / "s.sh", "changed by itself");
  auto files =
      CollectDroppedFiles({{work.path(), "/analysis"}}, "/analysis/s.sh", Sha256Hex("original"));
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "/analysis/s.sh");
}

TEST(DroppedFilesTest, LimitsCapTheListAndTheHashing) {
  testing::TempDir tmp;
  for (int i = 0; i < 5; ++i) Write(tmp / ("f" + std::to_string(i)), std::string(100, 'x'));
  DroppedFileLimits limits;
  limits.max_files = 3;
  limits.max_hash_bytes = 10;
  auto files = CollectDroppedFiles({{tmp.path(), "/tmp"}}, {}, {}, limits);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].size, 100u);
  EXPECT_EQ((*files)[0].sha256, "");  // too large to hash
}

}  // namespace
}  // namespace quell::sandbox
