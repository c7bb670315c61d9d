// The uploader against an in-process ArtifactTransfer server that keeps bytes in memory and
// can be told to break: resume, retry, give up and stop are what a user notices when a
// multi-gigabyte package crosses a flaky link.
#include "agent/channel/artifact_uploader.h"

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"
#include "quell/v1/transfer.grpc.pb.h"

namespace quell::agent {
namespace {

using quell::v1::UploadChunk;

// Holds one artifact's bytes. `break_after_chunks`: the next Upload stream fails with
// UNAVAILABLE after accepting that many chunks (once). `refuse`: every call fails with it.
class FakeTransfer final : public quell::v1::ArtifactTransfer::Service {
 public:
  grpc::Status UploadStatus(grpc::ServerContext*, const quell::v1::UploadStatusRequest*,
                            quell::v1::UploadStatusReply* reply) override {
    std::lock_guard lock(mu_);
    ++status_calls;
    if (refuse != grpc::StatusCode::OK) return {refuse, "refused"};
    if (!sealed_sha256.empty()) {
      reply->set_complete(true);
      reply->set_sha256(sealed_sha256);
      reply->set_size(bytes.size());
    } else {
      reply->set_offset(bytes.size());
    }
    return grpc::Status::OK;
  }

  grpc::Status Upload(grpc::ServerContext*, grpc::ServerReader<UploadChunk>* reader,
                      quell::v1::UploadReply* reply) override {
    UploadChunk chunk;
    int accepted = 0;
    while (reader->Read(&chunk)) {
      std::lock_guard lock(mu_);
      ++chunks_received;
      if (chunk.offset() != bytes.size()) return {grpc::StatusCode::FAILED_PRECONDITION, "offset"};
      bytes += chunk.data();
      if (break_after_chunks >= 0 && ++accepted == break_after_chunks) {
        break_after_chunks = -1;
        return {grpc::StatusCode::UNAVAILABLE, "link broke"};
      }
      if (chunk.last()) {
        if (Sha256Hex(bytes) != chunk.sha256()) {
          bytes.clear();
          return {grpc::StatusCode::INVALID_ARGUMENT, "upload does not match its SHA-256"};
        }
        sealed_sha256 = chunk.sha256();
        reply->set_sha256(sealed_sha256);
        reply->set_size(bytes.size());
        return grpc::Status::OK;
      }
    }
    return {grpc::StatusCode::CANCELLED, "ended early"};
  }

  std::mutex mu_;
  std::string bytes;
  std::string sealed_sha256;
  int break_after_chunks = -1;
  grpc::StatusCode refuse = grpc::StatusCode::OK;
  int status_calls = 0, chunks_received = 0;
};

class ArtifactUploaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    for (size_t i = 0; content_.size() < 300'000; ++i) content_ += std::to_string(i) + ",";
    ASSERT_TRUE(WriteFileAtomic(dir_ / "package.zip", content_).ok());
  }
  void TearDown() override { server_->Shutdown(); }

  ArtifactUploader Uploader(std::chrono::milliseconds give_up = std::chrono::seconds(30)) {
    return ArtifactUploader(
        [this] {
          return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                     grpc::InsecureChannelCredentials());
        },
        {.chunk_bytes = 64 << 10,
         .retry_initial = std::chrono::milliseconds(1),
         .retry_max = std::chrono::milliseconds(5),
         .give_up_after = give_up,
         .random = [](uint64_t bound) { return bound; }});
  }

  quell::testing::TempDir dir_;
  FakeTransfer fake_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string content_;
};

TEST_F(ArtifactUploaderTest, ResumesAfterABrokenStreamWithoutResendingWhatArrived) {
  fake_.break_after_chunks = 2;
  std::vector<uint64_t> stored;
  auto done = Uploader().Upload("a1", "package.zip", dir_ / "package.zip", {},
                                [&](uint64_t s, uint64_t total) {
                                  EXPECT_EQ(total, content_.size());
                                  stored.push_back(s);
                                });
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->sha256, Sha256Hex(content_));
  EXPECT_EQ(fake_.bytes, content_);
  EXPECT_EQ(fake_.chunks_received, 5) << "5 chunks of 64 KiB; nothing that arrived is sent again";
  EXPECT_EQ(fake_.status_calls, 2);
  ASSERT_FALSE(stored.empty());
  EXPECT_EQ(stored.back(), content_.size());
}

TEST_F(ArtifactUploaderTest, AnArtifactTheServerHoldsWholeIsNotSentAgain) {
  fake_.bytes = content_;
  fake_.sealed_sha256 = Sha256Hex(content_);
  auto done = Uploader().Upload("a1", "package.zip", dir_ / "package.zip", {});
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(fake_.chunks_received, 0);
}

TEST_F(ArtifactUploaderTest, AStalePartialFromAnEarlierRunIsReplacedOnce) {
  fake_.bytes = "bytes of another package";
  auto done = Uploader().Upload("a1", "package.zip", dir_ / "package.zip", {});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(fake_.bytes, content_);
}

TEST_F(ArtifactUploaderTest, RefusalsEndAtOnceAndAnUnreachableServerIsGivenUpOn) {
  fake_.refuse = grpc::StatusCode::PERMISSION_DENIED;
  auto refused = Uploader().Upload("a1", "package.zip", dir_ / "package.zip", {});
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(fake_.status_calls, 1);

  fake_.refuse = grpc::StatusCode::UNAVAILABLE;
  auto gave_up = Uploader(std::chrono::milliseconds(50))
                     .Upload("a1", "package.zip", dir_ / "package.zip", {});
  EXPECT_EQ(gave_up.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GT(fake_.status_calls, 2) << "it retried before giving up";

  EXPECT_EQ(Uploader().Upload("a1", "x", dir_ / "missing.zip", {}).status().code(),
            StatusCode::kNotFound);
}

TEST_F(ArtifactUploaderTest, StopEndsARetryingUpload) {
  fake_.refuse = grpc::StatusCode::UNAVAILABLE;
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop.request_stop();
  });
  auto stopped = Uploader(std::chrono::hours(1))
                     .Upload("a1", "package.zip", dir_ / "package.zip", stop.get_token());
  stopper.join();
  EXPECT_EQ(stopped.status().code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace quell::agent
