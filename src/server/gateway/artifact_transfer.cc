#include "server/gateway/artifact_transfer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "common/unique_fd.h"
#include "server/blobs/blob_names.h"
#include "server/blobs/blob_store.h"
#include "server/gateway/device_identity.h"

namespace quell::server {
namespace {

auto Log() { return Logger("server.transfer"); }

// One client stream: the first chunk names (and authorizes) the artifact, every chunk is
// appended as it arrives (nothing accumulates in memory), the last one seals it.
class UploadReactor final : public grpc::ServerReadReactor<quell::v1::UploadChunk> {
 public:
  UploadReactor(ArtifactTransferService& service, grpc::CallbackServerContext* context,
                quell::v1::UploadReply* reply)
      : service_(service), reply_(reply) {
    Result<std::string> device = AuthenticateDevice(*context, service_.store());
    if (!device.ok()) {
      Finish(ToGrpcStatus(device.status()));
      return;
    }
    device_id_ = *device;
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the stream ended without a last chunk: keep what arrived for a resume
      Finish({grpc::StatusCode::CANCELLED, "the upload ended before its last chunk"});
      return;
    }
    Status applied = ApplyChunk();
    if (!applied.ok()) {
      Log()->warn("device={} upload {} refused: {}", device_id_, upload_id_, applied.ToString());
      Finish(ToGrpcStatus(applied));
      return;
    }
    if (chunk_.last()) {
      Finish(grpc::Status::OK);
      return;
    }
    StartRead(&chunk_);
  }

  void OnDone() override { delete this; }

 private:
  Status ApplyChunk() {
    if (upload_id_.empty()) {
      if (chunk_.protocol_version() != quell::v1::PROTOCOL_VERSION_1) {
        return FailedPrecondition("unsupported protocol version; this server speaks 1");
      }
      ref_ = chunk_.artifact();
      QUELL_ASSIGN_OR_RETURN(upload_id_, service_.Authorize(device_id_, ref_));
    } else if (chunk_.has_artifact() && (chunk_.artifact().action_id() != ref_.action_id() ||
                                         chunk_.artifact().name() != ref_.name())) {
      return InvalidArgument("one upload stream carries one artifact");
    }
    return service_.Apply(upload_id_, ref_, chunk_, reply_);
  }

  ArtifactTransferService& service_;
  quell::v1::UploadReply* reply_;
  std::string device_id_;
  std::string upload_id_;  // set by the first chunk
  quell::v1::ArtifactRef ref_;
  quell::v1::UploadChunk chunk_;
};

// One server stream: the library file read with pread, one chunk in flight at a time.
class FetchReactor final : public grpc::ServerWriteReactor<quell::v1::FileChunk> {
 public:
  FetchReactor(ArtifactTransferService& service, grpc::CallbackServerContext* context,
               const quell::v1::FetchLibraryFileRequest& request) {
    Status opened = Open(service, *context, request);
    if (!opened.ok()) {
      Finish(ToGrpcStatus(opened));
      return;
    }
    offset_ = request.offset();
    SendNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish({grpc::StatusCode::CANCELLED, "the device went away"});
      return;
    }
    SendNext();
  }

  void OnDone() override { delete this; }

 private:
  Status Open(ArtifactTransferService& service, grpc::CallbackServerContext& context,
              const quell::v1::FetchLibraryFileRequest& request) {
    if (request.protocol_version() != quell::v1::PROTOCOL_VERSION_1) {
      return FailedPrecondition("unsupported protocol version; this server speaks 1");
    }
    QUELL_ASSIGN_OR_RETURN(std::string device_id, AuthenticateDevice(context, service.store()));
    QUELL_ASSIGN_OR_RETURN(sha256_, service.AuthorizeLibraryFetch(device_id, request.action_id(),
                                                                  request.name()));
    QUELL_ASSIGN_OR_RETURN(std::string path, service.blobs().PathOf(sha256_));
    fd_.Reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st{};
    if (!fd_ || ::fstat(fd_.get(), &st) != 0) {
      return NotFound("library file " + request.name() + " is no longer stored");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (request.offset() > size_) {
      return InvalidArgument("offset " + std::to_string(request.offset()) + " is past the end (" +
                        std::to_string(size_) + " bytes)");
    }
    return Status::Ok();
  }

  void SendNext() {
    if (offset_ >= size_ && sent_any_) {
      Finish(grpc::Status::OK);
      return;
    }
    std::string data(std::min<uint64_t>(kMaxUploadChunkBytes, size_ - offset_), '\0');
    ssize_t n = data.empty() ? 0 : ::pread(fd_.get(), data.data(), data.size(),
                                           static_cast<off_t>(offset_));
    if (n < 0 || static_cast<size_t>(n) != data.size()) {
      Finish({grpc::StatusCode::INTERNAL, "cannot read the library file"});
      return;
    }
    chunk_.set_offset(offset_);
    chunk_.set_data(std::move(data));
    chunk_.set_size(size_);
    chunk_.set_sha256(sha256_);
    offset_ += static_cast<uint64_t>(n);
    sent_any_ = true;
    StartWrite(&chunk_);
  }

  UniqueFd fd_;
  std::string sha256_;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  bool sent_any_ = false;  // an empty file still gets one (empty) chunk with its digest
  quell::v1::FileChunk chunk_;
};

}  // namespace

ArtifactTransferService::ArtifactTransferService(Store& store, BlobStore& blobs,
                                                 const Clock& clock)
    : store_(store), blobs_(blobs), clock_(clock) {}

Result<std::string> ArtifactTransferService::Authorize(const std::string& device_id,
                                                       const quell::v1::ArtifactRef& ref) {
  if (!IsPlainName(ref.name(), 64)) {
    return InvalidArgument("artifact names are 1-64 characters of [A-Za-z0-9._-]");
  }
  Result<MachineAction> action = store_.GetAction(ref.action_id());
  if (!action.ok() || action->machine_id != device_id) {
    // The same answer for "no such action" and "another device's": ids are not probed.
    return PermissionDenied("action " + ref.action_id() + " is not an action of this device");
  }
  if (action->status != ActionStatus::kPending && action->status != ActionStatus::kInProgress) {
    return PermissionDenied("action " + ref.action_id() + " is no longer running");
  }
  return ref.action_id() + "." + ref.name();
}

Status ArtifactTransferService::Apply(const std::string& upload_id,
                                      const quell::v1::ArtifactRef& ref,
                                      const quell::v1::UploadChunk& chunk,
                                      quell::v1::UploadReply* reply) {
  if (chunk.data().size() > kMaxUploadChunkBytes) {
    return InvalidArgument("a chunk carries at most 1 MiB");
  }
  if (!chunk.data().empty()) {
    QUELL_RETURN_IF_ERROR(blobs_.Append(upload_id, chunk.offset(), chunk.data()));
  }
  if (!chunk.last()) return Status::Ok();
  QUELL_ASSIGN_OR_RETURN(BlobInfo blob, blobs_.Finish(upload_id, chunk.sha256()));
  QUELL_RETURN_IF_ERROR(store_.PutActionArtifact({.action_id = ref.action_id(),
                                                  .name = ref.name(),
                                                  .sha256 = blob.sha256,
                                                  .size = blob.size,
                                                  .created = clock_.Now()}));
  Log()->info("action={} artifact {} stored: {} bytes, sha256 {}", ref.action_id(), ref.name(),
              blob.size, blob.sha256);
  reply->set_sha256(blob.sha256);
  reply->set_size(blob.size);
  return Status::Ok();
}

grpc::ServerUnaryReactor* ArtifactTransferService::UploadStatus(
    grpc::CallbackServerContext* context, const quell::v1::UploadStatusRequest* request,
    quell::v1::UploadStatusReply* reply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto answer = [&]() -> Status {
    if (request->protocol_version() != quell::v1::PROTOCOL_VERSION_1) {
      return FailedPrecondition("unsupported protocol version; this server speaks 1");
    }
    QUELL_ASSIGN_OR_RETURN(std::string device_id, AuthenticateDevice(*context, store_));
    const quell::v1::ArtifactRef& ref = request->artifact();
    if (!IsPlainName(ref.name(), 64)) {
      return InvalidArgument("artifact names are 1-64 characters of [A-Za-z0-9._-]");
    }
    // A finished artifact is reported even after its action ended: the agent whose last
    // reply was lost learns it is done instead of being refused.
    Result<MachineAction> action = store_.GetAction(ref.action_id());
    if (action.ok() && action->machine_id == device_id) {
      Result<ActionArtifact> done = store_.GetActionArtifact(ref.action_id(), ref.name());
      if (done.ok()) {
        reply->set_complete(true);
        reply->set_sha256(done->sha256);
        reply->set_size(done->size);
        return Status::Ok();
      }
    }
    QUELL_ASSIGN_OR_RETURN(std::string upload_id, Authorize(device_id, ref));
    QUELL_ASSIGN_OR_RETURN(uint64_t offset, blobs_.UploadedBytes(upload_id));
    reply->set_offset(offset);
    return Status::Ok();
  };
  reactor->Finish(ToGrpcStatus(answer()));
  return reactor;
}

grpc::ServerReadReactor<quell::v1::UploadChunk>* ArtifactTransferService::Upload(
    grpc::CallbackServerContext* context, quell::v1::UploadReply* reply) {
  return new UploadReactor(*this, context, reply);
}

Result<std::string> ArtifactTransferService::AuthorizeLibraryFetch(const std::string& device_id,
                                                                   const std::string& action_id,
                                                                   const std::string& name) {
  Result<MachineAction> action = store_.GetAction(action_id);
  if (!action.ok() || action->machine_id != device_id || action->type != "LiveResponse") {
    return PermissionDenied("action " + action_id + " is not a live response of this device");
  }
  if (action->status != ActionStatus::kPending && action->status != ActionStatus::kInProgress) {
    return PermissionDenied("action " + action_id + " is no longer running");
  }
  const nlohmann::json parameters = nlohmann::json::parse(action->parameters_json, nullptr, false);
  // An interactive session names no files up front: its putfile/run commands may fetch any
  // library file, as the library holds it now (the LiveCommand carries the digest the agent
  // checks, so a file replaced in between is refused on the device).
  if (parameters.is_object() && parameters.value("Interactive", false) == true) {
    Result<LibraryFile> file = store_.GetLibraryFile(name);
    if (!file.ok() || !IsSha256Hex(file->sha256)) {
      return PermissionDenied("the library has no file '" + name + "'");
    }
    return file->sha256;
  }
  const nlohmann::json* entry = nullptr;
  if (parameters.is_object() && parameters.contains("Library") &&
      parameters["Library"].is_object() && parameters["Library"].contains(name)) {
    entry = &parameters["Library"][name];
  }
  if (entry == nullptr || !entry->is_object() || !entry->contains("sha256") ||
      !(*entry)["sha256"].is_string() || !IsSha256Hex((*entry)["sha256"].get<std::string>())) {
    return PermissionDenied("action " + action_id + " names no library file '" + name + "'");
  }
  return (*entry)["sha256"].get<std::string>();
}

grpc::ServerWriteReactor<quell::v1::FileChunk>* ArtifactTransferService::FetchLibraryFile(
    grpc::CallbackServerContext* context, const quell::v1::FetchLibraryFileRequest* request) {
  return new FetchReactor(*this, context, *request);
}

}  // namespace quell::server
