#include "agent/channel/library_downloader.h"

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

auto Log() { return Logger("agent.library"); }

using Clock = std::chrono::steady_clock;

bool WriteAllAt(int fd, const std::string& data, uint64_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

LibraryDownloader::LibraryDownloader(ChannelFactory channels, LibraryDownloaderOptions options)
    : channels_(std::move(channels)), options_(std::move(options)) {
  if (!options_.random) options_.random = Backoff::SystemRandom();
}

Status LibraryDownloader::Fetch(const std::string& action_id, const std::string& name,
                             const std::string& sha256, const std::string& dest,
                             std::stop_token stop) {
  // Named by the digest: a part left by an earlier fetch of other content is never resumed.
  const std::string part = dest + "." + sha256.substr(0, 16) + ".part";
  UniqueFd fd(::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return ErrnoStatus("open " + part);
  Backoff backoff(options_.retry_initial, options_.retry_max, options_.random);
  const auto deadline = Clock::now() + options_.give_up_after;

  // One attempt: from what the part holds to the end.
  auto attempt = [&](quell::v1::ArtifactTransfer::Stub& stub) -> Status {
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + part);
    quell::v1::FetchLibraryFileRequest request;
    request.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
    request.set_action_id(action_id);
    request.set_name(name);
    request.set_offset(static_cast<uint64_t>(st.st_size));
    grpc::ClientContext context;
    auto reader = stub.FetchLibraryFile(&context, request);
    quell::v1::FileChunk chunk;
    while (reader->Read(&chunk)) {
      if (stop.stop_requested()) {
        context.TryCancel();
        break;
      }
      if (chunk.sha256() != sha256) {
        context.TryCancel();
        return InvalidArgument("the server sends " + name + " with SHA-256 " + chunk.sha256() +
                               ", not the " + sha256 + " the action names");
      }
      if (!WriteAllAt(fd.get(), chunk.data(), chunk.offset())) {
        context.TryCancel();
        return ErrnoStatus("write " + part);
      }
    }
    return FromGrpcStatus(reader->Finish(), "fetch library file " + name);
  };

  for (;;) {
    auto stub = quell::v1::ArtifactTransfer::NewStub(channels_());
    Status done = attempt(*stub);
    if (stop.stop_requested()) return Cancelled("fetch of " + name + " stopped");
    if (done.ok()) break;
    if (!IsTransientTransferError(done)) {
      ::unlink(part.c_str());
      return done;
    }
    auto delay = backoff.Next();
    if (Clock::now() + delay > deadline) {
      ::unlink(part.c_str());
      return DeadlineExceeded("fetch of " + name + " gave up: " + done.message());
    }
    Log()->warn("action={} fetch of {} interrupted ({}); retrying in {} ms", action_id, name,
                done.ToString(), delay.count());
    if (!SleepUnlessStopped(delay, stop)) return Cancelled("fetch of " + name + " stopped");
  }
  QUELL_ASSIGN_OR_RETURN(FileHashes got, HashFd(fd.get()));
  if (got.sha256 != sha256) {
    ::unlink(part.c_str());
    return InvalidArgument("library file " + name + " arrived with SHA-256 " + got.sha256 +
                           ", not " + sha256);
  }
  if (::fsync(fd.get()) != 0 || ::rename(part.c_str(), dest.c_str()) != 0) {
    return ErrnoStatus("rename " + part);
  }
  Log()->info("action={} fetched library file {} ({} bytes)", action_id, name, got.size);
  return Status::Ok();
}

}  // namespace quell::agent
