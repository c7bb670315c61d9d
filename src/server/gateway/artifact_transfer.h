// The ArtifactTransfer service (proto/quell/v1/transfer.proto): devices upload the files that
// belong to their own running actions, resumably, into the BlobStore; each finished upload is
// recorded as an ActionArtifact, the handle getPackageUri and the live response results use.
// And devices fetch the library files their running live response names.
//
// Rules: the caller is a current device certificate (AuthenticateDevice); the action must be
// the caller's and still Pending or InProgress; names are 1-64 characters of [A-Za-z0-9._-];
// a chunk carries at most 1 MiB. The upload's partial file is keyed "<action id>.<name>", so
// a resumed upload (after a reconnect or a server restart) continues the same file.
#pragma once

#include <grpcpp/grpcpp.h>

#include "common/clock.h"
#include "quell/v1/transfer.grpc.pb.h"
#include "server/blobs/blob_store.h"
#include "server/store/store.h"

namespace quell::server {

inline constexpr size_t kMaxUploadChunkBytes = 1 << 20;

class ArtifactTransferService final : public quell::v1::ArtifactTransfer::CallbackService {
 public:
  // All must outlive the service.
  ArtifactTransferService(Store& store, BlobStore& blobs, const Clock& clock);

  grpc::ServerUnaryReactor* UploadStatus(grpc::CallbackServerContext* context,
                                         const quell::v1::UploadStatusRequest* request,
                                         quell::v1::UploadStatusReply* reply) override;
  grpc::ServerReadReactor<quell::v1::UploadChunk>* Upload(grpc::CallbackServerContext* context,
                                                          quell::v1::UploadReply* reply) override;
  grpc::ServerWriteReactor<quell::v1::FileChunk>* FetchLibraryFile(
      grpc::CallbackServerContext* context,
      const quell::v1::FetchLibraryFileRequest* request) override;

  // The library file a device may fetch for its running LiveResponse action: the blob's
  // digest recorded in the action's parameters ("Library": {name: {"sha256"}}), or, for an
  // interactive session ({"Interactive": true}), the library's current file of that name.
  Result<std::string> AuthorizeLibraryFetch(const std::string& device_id,
                                            const std::string& action_id, const std::string& name);
  BlobStore& blobs() { return blobs_; }

  // The checks both calls start with: the upload id of an artifact the device may upload.
  Result<std::string> Authorize(const std::string& device_id, const quell::v1::ArtifactRef& ref);
  // Applies one chunk of an upload already authorized as `upload_id`; with `last`, seals it
  // and records the artifact.
  Status Apply(const std::string& upload_id, const quell::v1::ArtifactRef& ref,
               const quell::v1::UploadChunk& chunk, quell::v1::UploadReply* reply);

  Store& store() { return store_; }

 private:
  Store& store_;
  BlobStore& blobs_;
  const Clock& clock_;
};

}  // namespace quell::server
