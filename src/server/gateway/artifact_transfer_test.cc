// ArtifactTransfer over real TLS: uploads resume where the server stands, land in the blob
// store under their digest, and only a device's own running action can receive them.
#include <gtest/gtest.h>

#include "common/files.h"
#include "common/hash.h"
#include "server/gateway/gateway_test_env.h"

namespace quell::server {
namespace {

using quell::v1::ArtifactRef;
using quell::v1::UploadChunk;
using quell::v1::UploadReply;
using quell::v1::UploadStatusReply;
using quell::v1::UploadStatusRequest;

class ArtifactTransferTest : public GatewayTestEnv {
 protected:
  void SetUp() override {
    GatewayTestEnv::SetUp();
    agent_ = Enroll("h1");
    other_ = Enroll("h2");
    action_ = Request(agent_.device_id);
    stub_ = quell::v1::ArtifactTransfer::NewStub(Channel(&agent_.identity));
  }

  std::string Request(const std::string& device_id) {
    const ActionTypeSpec* spec = FindActionType("Isolate");
    auto action = actions_->Create({.machine_id = device_id,
                                    .spec = spec,
                                    .body = *spec->parse_body({{"Comment", "t"}}),
                                    .requestor = "tester"});
    EXPECT_TRUE(action.ok()) << action.status().ToString();
    return action->id;
  }

  static ArtifactRef Ref(const std::string& action_id, const std::string& name) {
    ArtifactRef ref;
    ref.set_action_id(action_id);
    ref.set_name(name);
    return ref;
  }

  grpc::Status Status(const ArtifactRef& ref, UploadStatusReply* reply) {
    UploadStatusRequest request;
    request.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
    *request.mutable_artifact() = ref;
    grpc::ClientContext context;
    return stub_->UploadStatus(&context, request, reply);
  }

  // Sends `data` from `offset` in pieces of `piece` bytes; seals when `last` (with `sha256`,
  // default the digest of `whole`).
  grpc::Status Send(const ArtifactRef& ref, uint64_t offset, const std::string& data,
                    bool last, const std::string& sha256, UploadReply* reply,
                    size_t piece = 100'000) {
    grpc::ClientContext context;
    auto writer = stub_->Upload(&context, reply);
    bool first = true;
    for (size_t at = 0; at < data.size() || (first && data.empty()); at += piece) {
      UploadChunk chunk;
      if (first) {
        chunk.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
        *chunk.mutable_artifact() = ref;
      }
      first = false;
      chunk.set_offset(offset + at);
      chunk.set_data(data.substr(at, piece));
      if (last && at + piece >= data.size()) {
        chunk.set_last(true);
        chunk.set_sha256(sha256);
      }
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  EnrolledAgent agent_, other_;
  std::string action_;
  std::unique_ptr<quell::v1::ArtifactTransfer::Stub> stub_;
};

std::string Content(size_t size) {
  std::string s;
  for (size_t i = 0; s.size() < size; ++i) s += std::to_string(i * 7919) + "\n";
  s.resize(size);
  return s;
}

TEST_F(ArtifactTransferTest, AnUploadInChunksBecomesTheActionsArtifact) {
  const std::string content = Content(350'000);
  UploadReply reply;
  grpc::Status sent =
      Send(Ref(action_, "package.zip"), 0, content, true, Sha256Hex(content), &reply);
  ASSERT_TRUE(sent.ok()) << sent.error_message();
  EXPECT_EQ(reply.sha256(), Sha256Hex(content));
  EXPECT_EQ(reply.size(), content.size());

  auto artifact = store_->GetActionArtifact(action_, "package.zip");
  ASSERT_TRUE(artifact.ok()) << artifact.status().ToString();
  EXPECT_EQ(artifact->sha256, Sha256Hex(content));
  EXPECT_EQ(*ReadFile(*blobs_->PathOf(artifact->sha256)), content);

  UploadStatusReply status;
  ASSERT_TRUE(Status(Ref(action_, "package.zip"), &status).ok());
  EXPECT_TRUE(status.complete()) << "a retry after a lost reply learns it is done";
  EXPECT_EQ(status.sha256(), Sha256Hex(content));
}

TEST_F(ArtifactTransferTest, ABrokenUploadResumesWhereTheServerStands) {
  const std::string content = Content(500'000);
  UploadReply reply;
  // The first attempt ends without its last chunk (the connection broke).
  grpc::Status broken =
      Send(Ref(action_, "big.bin"), 0, content.substr(0, 200'000), false, "", &reply);
  EXPECT_EQ(broken.error_code(), grpc::StatusCode::CANCELLED);

  UploadStatusReply status;
  ASSERT_TRUE(Status(Ref(action_, "big.bin"), &status).ok());
  EXPECT_FALSE(status.complete());
  ASSERT_EQ(status.offset(), 200'000u);

  // Sending from the wrong place is refused, and says so.
  grpc::Status wrong = Send(Ref(action_, "big.bin"), 0, content, true, Sha256Hex(content), &reply);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(wrong.error_message().find("continues at byte 200000"), std::string::npos);

  grpc::Status resumed = Send(Ref(action_, "big.bin"), status.offset(),
                              content.substr(status.offset()), true, Sha256Hex(content), &reply);
  ASSERT_TRUE(resumed.ok()) << resumed.error_message();
  EXPECT_EQ(*ReadFile(*blobs_->PathOf(reply.sha256())), content);
}

TEST_F(ArtifactTransferTest, ADigestMismatchDiscardsTheUploadSoItStartsAgain) {
  const std::string content = Content(10'000);
  UploadReply reply;
  grpc::Status bad = Send(Ref(action_, "out.txt"), 0, content, true, Sha256Hex("other"), &reply);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  UploadStatusReply status;
  ASSERT_TRUE(Status(Ref(action_, "out.txt"), &status).ok());
  EXPECT_EQ(status.offset(), 0u);
  EXPECT_FALSE(store_->GetActionArtifact(action_, "out.txt").ok());
}

TEST_F(ArtifactTransferTest, OnlyTheDevicesOwnRunningActionReceivesArtifacts) {
  UploadReply reply;
  UploadStatusReply status;
  const std::string theirs = Request(other_.device_id);
  EXPECT_EQ(Send(Ref(theirs, "x.bin"), 0, "x", true, Sha256Hex("x"), &reply).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status(Ref(theirs, "x.bin"), &status).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Status(Ref("no-such-action", "x.bin"), &status).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  for (const std::string& name :
       std::vector<std::string>{"", "../escape", "a/b", ".hidden", std::string(65, 'a')}) {
    EXPECT_EQ(Send(Ref(action_, name), 0, "x", true, Sha256Hex("x"), &reply).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << name;
  }
  EXPECT_EQ(Send(Ref(action_, "huge.bin"), 0, std::string((1 << 20) + 1, 'a'), true,
                 Sha256Hex("a"), &reply, (1 << 20) + 1)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // Once the action has ended, nothing more is accepted for it.
  ASSERT_TRUE(actions_->Cancel(action_, "tester", "done").ok());
  EXPECT_EQ(Send(Ref(action_, "late.bin"), 0, "x", true, Sha256Hex("x"), &reply).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  auto anonymous = quell::v1::ArtifactTransfer::NewStub(Channel());
  grpc::ClientContext context;
  UploadStatusRequest request;
  request.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
  *request.mutable_artifact() = Ref(action_, "x.bin");
  EXPECT_EQ(anonymous->UploadStatus(&context, request, &status).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}


// A running LiveResponse of `device_id` that names library file "tool.sh" with `content`.
std::string LiveResponseNaming(Store& store, BlobStore& blobs, const std::string& device_id,
                               const std::string& content) {
  BlobInfo blob = *blobs.Put(content);
  MachineAction a{.id = "live-" + device_id, .type = "LiveResponse", .requestor = "admin",
                  .status = ActionStatus::kInProgress, .machine_id = device_id};
  a.parameters_json = nlohmann::json{{"Commands", nlohmann::json::array()},
                                     {"Library", {{"tool.sh", {{"sha256", blob.sha256},
                                                               {"size", blob.size}}}}}}
                          .dump();
  EXPECT_TRUE(store.InsertAction(a, nullptr).ok());
  return a.id;
}

TEST_F(ArtifactTransferTest, ADeviceFetchesTheLibraryFilesItsLiveResponseNamesFromAnyOffset) {
  std::string content;
  for (int i = 0; content.size() < 2'500'000; ++i) content += std::to_string(i) + "\n";
  const std::string live = LiveResponseNaming(*store_, *blobs_, agent_.device_id, content);
  auto fetch = [&](const std::string& action, const std::string& name, uint64_t offset,
                   std::string* got) {
    quell::v1::FetchLibraryFileRequest request;
    request.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
    request.set_action_id(action);
    request.set_name(name);
    request.set_offset(offset);
    grpc::ClientContext context;
    auto reader = stub_->FetchLibraryFile(&context, request);
    quell::v1::FileChunk chunk;
    while (reader->Read(&chunk)) {
      EXPECT_LE(chunk.data().size(), 1u << 20);
      EXPECT_EQ(chunk.sha256(), Sha256Hex(content));
      *got += chunk.data();
    }
    return reader->Finish();
  };
  std::string whole;
  ASSERT_TRUE(fetch(live, "tool.sh", 0, &whole).ok());
  EXPECT_EQ(whole, content);
  std::string rest;
  ASSERT_TRUE(fetch(live, "tool.sh", 1'000'000, &rest).ok());
  EXPECT_EQ(rest, content.substr(1'000'000));

  std::string ignored;
  EXPECT_EQ(fetch(live, "other.sh", 0, &ignored).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(fetch(action_, "tool.sh", 0, &ignored).error_code(),  // not a live response
            grpc::StatusCode::PERMISSION_DENIED);
  const std::string theirs = LiveResponseNaming(*store_, *blobs_, other_.device_id, content);
  EXPECT_EQ(fetch(theirs, "tool.sh", 0, &ignored).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(fetch(live, "tool.sh", content.size() + 1, &ignored).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace quell::server
