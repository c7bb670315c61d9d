#include "server/blobs/blob_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::server {
namespace {

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = BlobStore::Open(dir_ / "blobs", {.max_blob_bytes = 1 << 20});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  quell::testing::TempDir dir_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, UploadInPiecesBecomesAReadableBlob) {
  std::string content(300'000, 'x');
  content += "tail";
  ASSERT_TRUE(store_->Append("act-1.0", 0, content.substr(0, 100'000)).ok());
  ASSERT_TRUE(store_->Append("act-1.0", 100'000, content.substr(100'000)).ok());
  EXPECT_EQ(*store_->UploadedBytes("act-1.0"), content.size());

  auto blob = store_->Finish("act-1.0", Sha256Hex(content));
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_EQ(blob->sha256, Sha256Hex(content));
  EXPECT_EQ(blob->size, content.size());
  auto path = store_->PathOf(blob->sha256);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*ReadFile(*path), content);
  EXPECT_EQ(*store_->UploadedBytes("act-1.0"), 0u);  // the partial is gone
  struct stat st {};
  ASSERT_EQ(::stat(path->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);  // written once, never rewritten
}

TEST_F(BlobStoreTest, ResumesWhereTheStoredBytesEndAndRefusesAGapOrOverlap) {
  ASSERT_TRUE(store_->Append("up", 0, "hello ").ok());
  Status gap = store_->Append("up", 10, "world");
  EXPECT_EQ(gap.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(gap.message().find("continues at byte 6"), std::string::npos) << gap.message();
  EXPECT_EQ(store_->Append("up", 0, "again").code(), StatusCode::kFailedPrecondition);

  // A new store on the same directory (a server restart) sees the same resume point.
  auto reopened = BlobStore::Open(store_->dir());
  ASSERT_TRUE(reopened.ok());
  ASSERT_EQ(*(*reopened)->UploadedBytes("up"), 6u);
  ASSERT_TRUE((*reopened)->Append("up", 6, "world").ok());
  EXPECT_TRUE((*reopened)->Finish("up", Sha256Hex("hello world")).ok());
}

TEST_F(BlobStoreTest, AMismatchedDigestDiscardsTheUpload) {
  ASSERT_TRUE(store_->Append("up", 0, std::string_view("torn tail\0\0\0", 12)).ok());
  auto sealed = store_->Finish("up", Sha256Hex("torn tail"));
  EXPECT_EQ(sealed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(sealed.status().message().find("send it again"), std::string::npos);
  EXPECT_EQ(*store_->UploadedBytes("up"), 0u);
  EXPECT_EQ(store_->PathOf(Sha256Hex("torn tail")).status().code(), StatusCode::kNotFound);
}

TEST_F(BlobStoreTest, IdenticalContentIsStoredOnce) {
  auto a = store_->Put("same bytes");
  ASSERT_TRUE(store_->Append("second", 0, "same bytes").ok());
  auto b = store_->Finish("second", Sha256Hex("same bytes"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->sha256, b->sha256);
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(store_->dir())) {
    files += e.is_regular_file();
  }
  EXPECT_EQ(files, 1u);
}

TEST_F(BlobStoreTest, EnforcesTheSizeLimit) {
  std::string half(600'000, 'a');
  ASSERT_TRUE(store_->Append("big", 0, half).ok());
  EXPECT_EQ(store_->Append("big", half.size(), half).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(store_->Put(std::string(2 << 20, 'b')).status().code(),
            StatusCode::kResourceExhausted);
}

TEST_F(BlobStoreTest, RefusesUploadIdsAndNamesThatAreNotPlainNames) {
  using namespace std::literals;
  for (std::string_view id : {""sv, "../escape"sv, "a/b"sv, ".hidden"sv, "sp ace"sv, "nul\0x"sv}) {
    EXPECT_EQ(store_->Append(id, 0, "x").code(), StatusCode::kInvalidArgument) << id;
  }
  EXPECT_EQ(store_->PathOf("../../etc/passwd").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Finish("nothing", Sha256Hex("x")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Finish("up", "ABC").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(BlobStoreTest, ReapsAbandonedPartialsOnly) {
  ASSERT_TRUE(store_->Append("old", 0, "x").ok());
  EXPECT_EQ(store_->ReapPartials(0), 0u);  // everything is newer than the epoch
  EXPECT_EQ(store_->ReapPartials(INT64_MAX), 1u);
  EXPECT_EQ(*store_->UploadedBytes("old"), 0u);
}

}  // namespace
}  // namespace quell::server
