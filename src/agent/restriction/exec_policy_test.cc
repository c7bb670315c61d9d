#include "agent/restriction/exec_policy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

class Fd {
 public:
  explicit Fd(const std::string& path) : fd_(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~Fd() { if (fd_ >= 0) close(fd_); }
  int get() const { return fd_; }
 private:
  int fd_;
};

std::string Md5Of(const std::string& path) {
  Fd fd(path);
  return DigestFd(fd.get())->md5;
}

class ExecPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::canonical(dir_.path()).string();
    pkg_ = root_ + "/pkg-tool";
    other_ = root_ + "/other";
    ASSERT_TRUE(WriteFileAtomic(pkg_, "#!/bin/true\npackaged\n", 0755).ok());
    ASSERT_TRUE(WriteFileAtomic(other_, "not from any package\n", 0755).ok());
  }
  PackageIndex Packages() {
    PackageIndex index;
    index.Add(pkg_, PackageFile{Md5Of(pkg_), "tools"});
    return index;
  }
  quell::testing::TempDir dir_;
  std::string root_, pkg_, other_;
};

TEST_F(ExecPolicyTest, DigestsMatchKnownValues) {
  ASSERT_TRUE(WriteFileAtomic(root_ + "/abc", "abc").ok());
  Fd fd(root_ + "/abc");
  auto d = DigestFd(fd.get());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->sha256, Sha256Hex("abc"));
  EXPECT_EQ(d->md5, "900150983cd24fb0d6963f7d28e17f72");
}

TEST_F(ExecPolicyTest, ApprovesUnmodifiedPackageFilesAndDeniesOthers) {
  ExecPolicy policy(Packages(), {});
  Fd pkg(pkg_), other(other_);
  auto v = policy.Evaluate(pkg.get());
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->approved);
  EXPECT_EQ(v->reason, "package:tools");
  EXPECT_EQ(v->path, pkg_);
  auto o = policy.Evaluate(other.get());
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->approved);
  EXPECT_EQ(o->reason, "not from a package");
  EXPECT_EQ(o->sha256, Sha256Hex("not from any package\n"));
}

TEST_F(ExecPolicyTest, SecondLookupIsACacheHitAndAChangeInvalidatesIt) {
  ExecPolicy policy(Packages(), {});
  {
    Fd pkg(pkg_);
    ASSERT_TRUE(policy.Evaluate(pkg.get())->approved);
    auto again = policy.Evaluate(pkg.get());
    EXPECT_TRUE(again->cached);
    EXPECT_EQ(policy.counters().hashed, 1u);
  }
  // Modify in place (same inode): ctime/size change, so the verdict is recomputed.
  {
    std::ofstream out(pkg_, std::ios::app);
    out << "tampered\n";
  }
  Fd pkg(pkg_);
  auto v = policy.Evaluate(pkg.get());
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->cached);
  EXPECT_FALSE(v->approved);
  EXPECT_EQ(v->reason, "modified package file");
  EXPECT_EQ(v->package, "tools");
}

TEST_F(ExecPolicyTest, AllowListAndTheAgentItselfAreApproved) {
  std::string upper = Sha256Hex("not from any package\n");
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  ExecPolicy listed(Packages(), {.allow_sha256 = {upper}});
  Fd other(other_);
  EXPECT_EQ(listed.Evaluate(other.get())->reason, "allow-list");

  ExecPolicy self(Packages(), {.self_key = *KeyOfFd(other.get())});
  auto v = self.Evaluate(other.get());
  EXPECT_TRUE(v->approved);
  EXPECT_EQ(v->reason, "agent");
}

TEST_F(ExecPolicyTest, OversizedFilesAreNotHashedAndNotApproved) {
  ExecPolicy policy(Packages(), {.max_file_bytes = 4});
  Fd pkg(pkg_);
  auto v = policy.Evaluate(pkg.get());
  EXPECT_FALSE(v->approved);
  EXPECT_EQ(v->reason, "too large to verify");
  EXPECT_EQ(policy.counters().hashed, 0u);
}

TEST_F(ExecPolicyTest, UnreadableFileIsAnErrorNotAVerdict) {
  ExecPolicy policy(Packages(), {});
  Fd d(root_);  // a directory: pread fails with EISDIR
  EXPECT_FALSE(policy.Evaluate(d.get()).ok());
  EXPECT_FALSE(policy.Evaluate(-1).ok());
}

TEST(NormaliseSha256, AcceptsOnly64HexDigits) {
  EXPECT_EQ(*NormaliseSha256(std::string(64, 'A')), std::string(64, 'a'));
  EXPECT_FALSE(NormaliseSha256(std::string(63, 'a')));
  EXPECT_FALSE(NormaliseSha256(std::string(64, 'g')));
}

}  // namespace
}  // namespace quell::agent
