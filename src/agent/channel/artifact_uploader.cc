#include "agent/channel/artifact_uploader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


#include "agent/channel/endpoint.h"
#include "agent/channel/transfer_retry.h"
#include "common/hash.h"
#include "common/logging.h"
#include "common/unique_fd.h"
#include "quell/v1/transfer.grpc.pb.h"

namespace quell::agent {
namespace {

auto Log() { return Logger("agent.upload"); }

using Clock = std::chrono::steady_clock;

quell::v1::ArtifactRef Ref(const std::string& action_id, const std::string& name) {
  quell::v1::ArtifactRef ref;
  ref.set_action_id(action_id);
  ref.set_name(name);
  return ref;
}

}  // namespace

ArtifactUploader::ArtifactUploader(ChannelFactory channels, ArtifactUploaderOptions options)
    : channels_(std::move(channels)), options_(std::move(options)) {
  if (!options_.random) options_.random = Backoff::SystemRandom();
}

Result<UploadedArtifact> ArtifactUploader::Upload(const std::string& action_id,
                                                  const std::string& name,
                                                  const std::string& path, std::stop_token stop,
                                                  const Progress& progress) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + path);
  QUELL_ASSIGN_OR_RETURN(FileHashes hashes, HashFd(fd.get()));
  const uint64_t total = hashes.size;
  const quell::v1::ArtifactRef ref = Ref(action_id, name);
  Backoff backoff(options_.retry_initial, options_.retry_max, options_.random);
  const auto deadline = Clock::now() + options_.give_up_after;
  std::string buffer(options_.chunk_bytes, '\0');

  // One attempt: where does the server stand, then everything from there.
  auto attempt = [&](quell::v1::ArtifactTransfer::Stub& stub) -> Result<UploadedArtifact> {
    quell::v1::UploadStatusRequest ask;
    ask.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
    *ask.mutable_artifact() = ref;
    quell::v1::UploadStatusReply where;
    {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      QUELL_RETURN_IF_ERROR(
          FromGrpcStatus(stub.UploadStatus(&context, ask, &where), "upload status"));
    }
    if (where.complete()) {
      if (where.sha256() != hashes.sha256) {
        return FailedPrecondition("the server holds a different " + name + " for this action");
      }
      return UploadedArtifact{.sha256 = where.sha256(), .size = where.size()};
    }
    uint64_t offset = where.offset();
    if (offset > total) offset = 0;  // cannot be ours; the digest check will settle it
    if (offset > 0) {
      Log()->info("action={} resuming {} at byte {} of {}", action_id, name, offset, total);
    }
    grpc::ClientContext context;
    quell::v1::UploadReply reply;
    auto writer = stub.Upload(&context, &reply);
    bool first = true;
    do {
      if (stop.stop_requested()) {
        context.TryCancel();
        break;
      }
      size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), total - offset));
      ssize_t got =
          want == 0 ? 0 : ::pread(fd.get(), buffer.data(), want, static_cast<off_t>(offset));
      if (got < 0 || static_cast<size_t>(got) != want) {
        context.TryCancel();
        return Internal("read " + path + " while uploading it: the file changed or is unreadable");
      }
      quell::v1::UploadChunk chunk;
      if (first) {
        chunk.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
        *chunk.mutable_artifact() = ref;
        first = false;
      }
      chunk.set_offset(offset);
      chunk.set_data(buffer.data(), want);
      offset += want;
      if (offset == total) {
        chunk.set_last(true);
        chunk.set_sha256(hashes.sha256);
      }
      if (!writer->Write(chunk)) break;  // the stream ended; Finish says why
      if (progress) progress(offset, total);
    } while (offset < total);
    writer->WritesDone();
    QUELL_RETURN_IF_ERROR(FromGrpcStatus(writer->Finish(), "upload " + name));
    if (stop.stop_requested()) return Cancelled("upload of " + name + " stopped");
    return UploadedArtifact{.sha256 = reply.sha256(), .size = reply.size()};
  };

  bool restarted = false;
  for (;;) {
    auto stub = quell::v1::ArtifactTransfer::NewStub(channels_());
    Result<UploadedArtifact> done = attempt(*stub);
    if (done.ok()) {
      Log()->info("action={} uploaded {} ({} bytes, sha256 {})", action_id, name, done->size,
                  done->sha256);
      return done;
    }
    if (stop.stop_requested()) return Cancelled("upload of " + name + " stopped");
    // A partial left by an earlier run (say, a package built again after an agent restart)
    // fails the digest check; the server then dropped it, so one fresh start fixes that.
    const bool stale_partial =
        done.status().code() == StatusCode::kInvalidArgument &&
        done.status().message().find("does not match its SHA-256") != std::string::npos;
    if (stale_partial && !restarted) {
      restarted = true;
      Log()->warn("action={} {}: the server's partial upload was not this file; starting again",
                  action_id, name);
      continue;
    }
    if (!IsTransientTransferError(done.status())) return done.status();
    auto delay = backoff.Next();
    if (Clock::now() + delay > deadline) {
      return DeadlineExceeded("upload of " + name + " gave up: " + done.status().message());
    }
    Log()->warn("action={} upload of {} interrupted ({}); retrying in {} ms", action_id, name,
                done.status().ToString(), delay.count());
    if (!SleepUnlessStopped(delay, stop)) return Cancelled("upload of " + name + " stopped");
  }
}

}  // namespace quell::agent
