#include "common/zip_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/files.h"

namespace quell {
namespace {

namespace fs = std::filesystem;

// The archives are checked with 7z, the tool responders open them with.
class ZipWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("quell-zip-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "tree" / "Topic A");
    ASSERT_TRUE(WriteFileAtomic((dir_ / "tree" / "Topic A" / "one.txt").string(), "first\n").ok());
    ASSERT_TRUE(WriteFileAtomic((dir_ / "tree" / "two.txt").string(), std::string(300000, 'z')).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  int Run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

  fs::path dir_;
};

TEST_F(ZipWriterTest, WritesATreeThat7zTestsAndExtractsIdentically) {
  if (Run("command -v 7z") != 0) GTEST_SKIP() << "7z not installed";
  auto zip = ZipWriter::Create((dir_ / "out.zip").string());
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  ASSERT_TRUE(zip->AddTree((dir_ / "tree").string()).ok());
  double last = 0;
  ASSERT_TRUE(zip->Close([&](double p) { last = p; }).ok());
  EXPECT_DOUBLE_EQ(last, 1.0);
  EXPECT_LT(fs::file_size(dir_ / "out.zip"), 300000u);  // compressed
  ASSERT_EQ(Run("7z t " + (dir_ / "out.zip").string()), 0);
  ASSERT_EQ(Run("7z x -o" + (dir_ / "x").string() + " " + (dir_ / "out.zip").string()), 0);
  EXPECT_EQ(*ReadFile((dir_ / "x" / "Topic A" / "one.txt").string()), "first\n");
  EXPECT_EQ(*ReadFile((dir_ / "x" / "two.txt").string()), std::string(300000, 'z'));
}

TEST_F(ZipWriterTest, APasswordEncryptsWithAes256) {
  if (Run("command -v 7z") != 0) GTEST_SKIP() << "7z not installed";
  auto zip = ZipWriter::Create((dir_ / "secret.zip").string(), {.password = "s3cret-Pass"});
  ASSERT_TRUE(zip.ok());
  ASSERT_TRUE(zip->AddFile("one.txt", (dir_ / "tree" / "Topic A" / "one.txt").string()).ok());
  ASSERT_TRUE(zip->Close().ok());
  const std::string archive = (dir_ / "secret.zip").string();
  EXPECT_NE(Run("7z t -pwrong " + archive), 0);
  EXPECT_EQ(Run("7z t -ps3cret-Pass " + archive), 0);
  EXPECT_EQ(Run("7z l -slt " + archive + " | grep -q 'Method = AES-256'"), 0);
}

TEST_F(ZipWriterTest, BadNamesAreRefusedAndAnUnclosedWriterLeavesNothing) {
  {
    auto zip = ZipWriter::Create((dir_ / "never.zip").string());
    ASSERT_TRUE(zip.ok());
    const std::string src = (dir_ / "tree" / "two.txt").string();
    EXPECT_EQ(zip->AddFile("../evil", src).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(zip->AddFile("/abs", src).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(zip->AddFile("a//b", src).code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(zip->AddFile("ok/name.txt", src).ok());
  }
  EXPECT_FALSE(fs::exists(dir_ / "never.zip"));
}

TEST_F(ZipWriterTest, ASourceThatVanishedFailsTheClose) {
  auto zip = ZipWriter::Create((dir_ / "broken.zip").string());
  ASSERT_TRUE(zip.ok());
  ASSERT_TRUE(zip->AddFile("gone.txt", (dir_ / "tree" / "two.txt").string()).ok());
  fs::remove(dir_ / "tree" / "two.txt");
  EXPECT_FALSE(zip->Close().ok());
  EXPECT_FALSE(fs::exists(dir_ / "broken.zip"));
}

}  // namespace
}  // namespace quell
