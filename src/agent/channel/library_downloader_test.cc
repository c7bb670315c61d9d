// LibraryDownloader against an in-process ArtifactTransfer: resume after a broken stream, the
// digest check, and refusals that end it at once.
#include "agent/channel/library_downloader.h"

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <mutex>

#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"
#include "quell/v1/transfer.grpc.pb.h"

namespace quell::agent {
namespace {

// Serves `content` in 64 KiB chunks from the requested offset. `break_after_chunks`: the next
// stream fails with UNAVAILABLE after that many chunks (once). `refuse`: every call fails.
class FakeLibrary final : public quell::v1::ArtifactTransfer::Service {
 public:
  grpc::Status FetchLibraryFile(grpc::ServerContext*,
                                const quell::v1::FetchLibraryFileRequest* request,
                                grpc::ServerWriter<quell::v1::FileChunk>* writer) override {
    std::lock_guard lock(mu);
    offsets.push_back(request->offset());
    if (refuse != grpc::StatusCode::OK) return {refuse, "not a live response of this device"};
    int sent = 0;
    for (uint64_t at = request->offset(); at < content.size(); at += 64 << 10) {
      quell::v1::FileChunk chunk;
      chunk.set_offset(at);
      chunk.set_data(content.substr(at, 64 << 10));
      chunk.set_size(content.size());
      chunk.set_sha256(announced.empty() ? Sha256Hex(content) : announced);
      writer->Write(chunk);
      if (break_after_chunks >= 0 && ++sent == break_after_chunks) {
        break_after_chunks = -1;
        return {grpc::StatusCode::UNAVAILABLE, "link broke"};
      }
    }
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::string content;
  std::string announced;  // the digest sent with the chunks; empty: the real one
  int break_after_chunks = -1;
  grpc::StatusCode refuse = grpc::StatusCode::OK;
  std::vector<uint64_t> offsets;
};

class LibraryDownloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    for (size_t i = 0; fake_.content.size() < 300'000; ++i) fake_.content += std::to_string(i) + ";";
  }
  void TearDown() override { server_->Shutdown(); }

  Status Fetch(const std::string& sha256) {
    LibraryDownloader downloader(
        [this] {
          return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                     grpc::InsecureChannelCredentials());
        },
        {.retry_initial = std::chrono::milliseconds(1),
         .retry_max = std::chrono::milliseconds(5),
         .give_up_after = std::chrono::seconds(30),
         .random = [](uint64_t bound) { return bound; }});
    return downloader.Fetch("a1", "triage.sh", sha256, dest_, {});
  }

  quell::testing::TempDir dir_;
  std::string dest_ = dir_ / "triage.sh";
  FakeLibrary fake_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(LibraryDownloaderTest, ResumesAfterABrokenStreamAndLandsTheExactFile) {
  fake_.break_after_chunks = 2;
  ASSERT_TRUE(Fetch(Sha256Hex(fake_.content)).ok());
  EXPECT_EQ(*ReadFile(dest_), fake_.content);
  ASSERT_EQ(fake_.offsets.size(), 2u);
  EXPECT_EQ(fake_.offsets[1], 2u * (64 << 10));  // continued, not restarted
  EXPECT_EQ(std::filesystem::status(dest_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(LibraryDownloaderTest, AFileWithAnotherDigestNeverAppearsUnderTheName) {
  fake_.announced = Sha256Hex("what the action was created with");
  Status s = Fetch(Sha256Hex("what the action was created with"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("arrived with SHA-256"), std::string::npos) << s.message();
  EXPECT_FALSE(std::filesystem::exists(dest_));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_.path()),
                          std::filesystem::directory_iterator()),
            0);  // no part left behind
}

TEST_F(LibraryDownloaderTest, ARefusalEndsItAtOnce) {
  fake_.refuse = grpc::StatusCode::PERMISSION_DENIED;
  Status s = Fetch(Sha256Hex(fake_.content));
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(fake_.offsets.size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(dest_));
}

}  // namespace
}  // namespace quell::agent
