#include "common/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/testing/temp_dir.h"

namespace quell {
namespace {

class FilesTest : public ::testing::Test {
 protected:
  quell::testing::TempDir temp_dir_;
  std::string dir_ = temp_dir_.path();
};

TEST_F(FilesTest, AtomicWriteThenRead) {
  std::string path = dir_ + "/state.json";
  ASSERT_TRUE(WriteFileAtomic(path, "{\"a\":1}").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "{\"a\":2}").ok());
  EXPECT_EQ(ReadFile(path).value(), "{\"a\":2}");
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ListFiles(dir_).value(), std::vector<std::string>{"state.json"});
}

TEST_F(FilesTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadFile(dir_ + "/nope").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(RemoveFile(dir_ + "/nope").ok());
  EXPECT_TRUE(ListFiles(dir_ + "/nodir").value().empty());
}

TEST_F(FilesTest, MakeDirsCreatesParents) {
  ASSERT_TRUE(MakeDirs(dir_ + "/a/b/c").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a/b/c/x", "x").ok());
  EXPECT_TRUE(MakeDirs(dir_ + "/a/b/c").ok());
}

}  // namespace
}  // namespace quell
