#include "agent/restriction/package_index.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

TEST(PackageIndex, ParsesMd5sumsLinesAndSkipsMalformedOnes) {
  std::vector<std::pair<std::string, std::string>> got;
  size_t n = ParseMd5sums(
      "0123456789ABCDEF0123456789abcdef  usr/bin/foo\n"
      "not-a-digest  usr/bin/bar\n"
      "0123456789abcdef0123456789abcdef  usr/share/doc/a b.txt\n"
      "0123456789abcdef0123456789abcdef\n",
      [&](std::string p, std::string m) { got.emplace_back(p, m); });
  EXPECT_EQ(n, 2u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, "/usr/bin/foo");
  EXPECT_EQ(got[0].second, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(got[1].first, "/usr/share/doc/a b.txt");
}

TEST(PackageIndex, LoadsEveryPackageAndResolvesAliasedDirectories) {
  quell::testing::TempDir dir;
  ASSERT_TRUE(MakeDirs(dir / "info").ok());
  ASSERT_TRUE(MakeDirs(dir / "usr/bin").ok());
  // A merged-/usr style alias: <dir>/bin -> usr/bin.
  ASSERT_EQ(symlink("usr/bin", (dir / "bin").c_str()), 0);
  const std::string rel_alias = (dir / "bin/tool").substr(1);
  ASSERT_TRUE(WriteFileAtomic(dir / "info/tools:amd64.md5sums",
                              "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa  " + rel_alias + "\n").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "info/other.md5sums",
                              "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb  opt/x\n").ok());
  ASSERT_TRUE(WriteFileAtomic(dir / "info/other.list", "/opt/x\n").ok());
  auto index = PackageIndex::Load(dir / "info");
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(index->size(), 2u);
  const std::string real = std::filesystem::canonical(dir.path()).string() + "/usr/bin/tool";
  const PackageFile* f = index->Find(real);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->package, "tools");  // architecture qualifier dropped
  EXPECT_EQ(f->md5, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  ASSERT_NE(index->Find("/opt/x"), nullptr);
  EXPECT_EQ(index->Find("/opt/y"), nullptr);
}

TEST(PackageIndex, MissingDirectoryIsNotFound) {
  auto index = PackageIndex::Load("/nonexistent/quell/dpkg/info");
  EXPECT_EQ(index.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace quell::agent
