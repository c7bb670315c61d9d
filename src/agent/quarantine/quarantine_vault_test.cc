#include "agent/quarantine/quarantine_vault.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>

#include "agent/quarantine/testing/tree_snapshot.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::quarantine {
namespace {

using quell::testing::TempDir;
using testing::Snapshot;
using testing::WriteFileAt;

std::string Digest(const EVP_MD* md, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex += kHex[out[i] >> 4];
    hex += kHex[out[i] & 15];
  }
  return hex;
}

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n));
  return s;
}

class VaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A path with spaces and a newline, and content larger than one streaming chunk.
    dir_ = tmp_ / "host/dir with spaces";
    path_ = dir_ + "/evil\nname .bin";
    content_ = "MARKER-PLAINTEXT-" + RandomBytes(300 * 1024) + "-END";
    WriteFileAt(path_, content_, 0751);
    if (::geteuid() == 0) {
      ASSERT_EQ(::chown(path_.c_str(), 1234, 5678), 0);
    }
    const std::string value("bin\0ary", 7);
    ASSERT_EQ(::setxattr(path_.c_str(), "user.quell.test", value.data(), value.size(), 0), 0);
    struct timespec times[2] = {{1'600'000'000, 123456789}, {1'500'000'000, 987654321}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path_.c_str(), times, 0), 0);
    auto vault = QuarantineVault::Open(tmp_ / "state/vault");
    ASSERT_TRUE(vault.ok()) << vault.status().ToString();
    vault_ = std::move(*vault);
  }

  TempDir tmp_;
  std::string dir_, path_, content_;
  std::unique_ptr<QuarantineVault> vault_;
};

TEST_F(VaultTest, RoundTripRestoresBytesOwnerModeTimesAndXattrs) {
  const auto before = Snapshot(tmp_ / "host");
  auto item = vault_->Store(path_, "op-1-0");
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  EXPECT_EQ(item->path, path_);
  EXPECT_EQ(item->size, content_.size());
  EXPECT_EQ(item->sha256, Sha256Hex(content_));
  EXPECT_EQ(item->sha1, Digest(EVP_sha1(), content_));
  EXPECT_EQ(item->md5, Digest(EVP_md5(), content_));
  EXPECT_EQ(item->mode, 0751u);
  EXPECT_EQ(item->mtime_ns, 1'500'000'000'987654321LL);
  ASSERT_EQ(item->xattrs.size(), 1u);
  EXPECT_EQ(item->xattrs[0].second, std::string("bin\0ary", 7));

  // Encrypted at rest: the plaintext marker is not in the blob.
  auto blob = ReadFile(tmp_ / "state/vault/op-1-0.qv");
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(blob->find("MARKER-PLAINTEXT"), std::string::npos);
  EXPECT_EQ(blob->size(), content_.size() + 8 + 12 + 16);

  ASSERT_EQ(::unlink(path_.c_str()), 0);
  // A fresh instance (agent restart) reads the same key.
  auto reopened = QuarantineVault::Open(tmp_ / "state/vault");
  ASSERT_TRUE(reopened.ok());
  ASSERT_TRUE((*reopened)->Restore("op-1-0").ok());
  EXPECT_EQ(Snapshot(tmp_ / "host"), before);  // bytes, owner, mode, mtime, xattrs, dir mtime
  // Restoring again is a no-op.
  EXPECT_TRUE((*reopened)->Restore("op-1-0").ok());
}

TEST_F(VaultTest, KeyFileIsPrivateAndStable) {
  struct stat st {};
  ASSERT_EQ(::stat((tmp_ / "state/vault/vault.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  ASSERT_EQ(::stat((tmp_ / "state/vault").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto again = QuarantineVault::Open(tmp_ / "state/vault");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->key_id(), vault_->key_id());
  // A damaged key file is refused, never replaced.
  WriteFileAt(tmp_ / "state/vault/vault.key", "short", 0600);
  auto bad = QuarantineVault::Open(tmp_ / "state/vault");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("expected 32"), std::string::npos);
}

TEST_F(VaultTest, RefusesToOverwriteADifferentFile) {
  ASSERT_TRUE(vault_->Store(path_, "op-2-0").ok());
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  WriteFileAt(path_, "someone else's file");
  Status s = vault_->Restore("op-2-0");
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_NE(s.message().find("different file"), std::string::npos);
  EXPECT_EQ(*ReadFile(path_), "someone else's file");
}

TEST_F(VaultTest, TamperedBlobFailsClearlyAndLeavesNothing) {
  ASSERT_TRUE(vault_->Store(path_, "op-3-0").ok());
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  const auto before = Snapshot(tmp_ / "host", /*with_dir_mtime=*/false);
  const std::string blob_path = tmp_ / "state/vault/op-3-0.qv";
  std::string blob = *ReadFile(blob_path);
  blob[blob.size() / 2] ^= 0x01;
  ASSERT_TRUE(WriteFileAtomic(blob_path, blob).ok());
  Status s = vault_->Restore("op-3-0");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("failed authentication"), std::string::npos) << s.message();
  EXPECT_EQ(Snapshot(tmp_ / "host", false), before);  // no partial file, no temp file

  blob.resize(blob.size() - 20);  // truncated
  ASSERT_TRUE(WriteFileAtomic(blob_path, blob).ok());
  s = vault_->Restore("op-3-0");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_EQ(Snapshot(tmp_ / "host", false), before);
}

TEST_F(VaultTest, WrongKeyFailsClearly) {
  ASSERT_TRUE(vault_->Store(path_, "op-4-0").ok());
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  ASSERT_TRUE(WriteFileAtomic(tmp_ / "state/vault/vault.key", RandomBytes(32)).ok());
  auto other = QuarantineVault::Open(tmp_ / "state/vault");
  ASSERT_TRUE(other.ok());
  Status s = (*other)->Restore("op-4-0");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("another vault key"), std::string::npos) << s.message();

  // Even with the metadata claiming the new key, GCM authentication catches it.
  const std::string meta_path = tmp_ / "state/vault/op-4-0.json";
  auto meta = nlohmann::json::parse(*ReadFile(meta_path));
  meta["keyId"] = (*other)->key_id();
  ASSERT_TRUE(WriteFileAtomic(meta_path, meta.dump()).ok());
  s = (*other)->Restore("op-4-0");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("failed authentication"), std::string::npos) << s.message();
  struct stat st {};
  EXPECT_NE(::lstat(path_.c_str(), &st), 0);
}

TEST_F(VaultTest, StoreIsIdempotentAndDeleteForgets) {
  auto a = vault_->Store(path_, "op-5-0");
  ASSERT_TRUE(a.ok());
  auto b = vault_->Store(path_, "op-5-0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->sha256, b->sha256);
  EXPECT_EQ(vault_->List().size(), 1u);
  ASSERT_TRUE(vault_->Delete("op-5-0").ok());
  EXPECT_EQ(vault_->Find("op-5-0").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(vault_->Store(path_, "../escape").ok());
}

TEST(VaultBytesTest, JsonBytesRoundTripAnyBytes) {
  for (const std::string& s : {std::string("plain"), std::string("new\nline"), std::string("\xff\xfe\0x", 4),
                               std::string()}) {
    nlohmann::json j = BytesToJson(s);
    auto back = BytesFromJson(nlohmann::json::parse(j.dump()));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
}

}  // namespace
}  // namespace quell::agent::quarantine
