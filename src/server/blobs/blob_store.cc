#include "server/blobs/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <functional>

#include "common/files.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/unique_fd.h"
#include "server/blobs/blob_names.h"

namespace quell::server {
namespace {

Status WriteAll(int fd, uint64_t offset, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write blob upload");
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) return ErrnoStatus("fsync " + dir);
  return Status::Ok();
}

}  // namespace

BlobStore::BlobStore(std::string dir, BlobStoreOptions options)
    : dir_(std::move(dir)), options_(options) {}

Result<std::unique_ptr<BlobStore>> BlobStore::Open(std::string dir, BlobStoreOptions options) {
  QUELL_RETURN_IF_ERROR(MakeDirs(dir + "/partial"));
  QUELL_RETURN_IF_ERROR(MakeDirs(dir + "/sha256"));
  return std::unique_ptr<BlobStore>(new BlobStore(std::move(dir), options));
}

std::string BlobStore::PartialPath(std::string_view upload_id) const {
  return dir_ + "/partial/" + std::string(upload_id);
}

std::string BlobStore::BlobPath(std::string_view sha256) const {
  return dir_ + "/sha256/" + std::string(sha256.substr(0, 2)) + "/" + std::string(sha256);
}

std::mutex& BlobStore::LockFor(std::string_view upload_id) const {
  return upload_locks_[std::hash<std::string_view>{}(upload_id) % upload_locks_.size()];
}

Result<uint64_t> BlobStore::UploadedBytes(std::string_view upload_id) const {
  if (!IsPlainName(upload_id, 128)) return InvalidArgument("invalid upload id");
  std::lock_guard lock(LockFor(upload_id));
  struct stat st {};
  if (::stat(PartialPath(upload_id).c_str(), &st) != 0) {
    if (errno == ENOENT) return uint64_t{0};
    return ErrnoStatus("stat blob upload");
  }
  return static_cast<uint64_t>(st.st_size);
}

Status BlobStore::Append(std::string_view upload_id, uint64_t offset, std::string_view bytes) {
  if (!IsPlainName(upload_id, 128)) return InvalidArgument("invalid upload id");
  std::lock_guard lock(LockFor(upload_id));
  UniqueFd fd(::open(PartialPath(upload_id).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus("open blob upload");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat blob upload");
  uint64_t have = static_cast<uint64_t>(st.st_size);
  if (offset != have) {
    return FailedPrecondition("upload " + std::string(upload_id) + " continues at byte " +
                              std::to_string(have) + ", not " + std::to_string(offset));
  }
  if (have + bytes.size() > options_.max_blob_bytes) {
    return ResourceExhausted("upload exceeds the limit of " +
                             std::to_string(options_.max_blob_bytes) + " bytes");
  }
  return WriteAll(fd.get(), offset, bytes);
}

Result<BlobInfo> BlobStore::Finish(std::string_view upload_id, std::string_view expected_sha256) {
  if (!IsPlainName(upload_id, 128)) return InvalidArgument("invalid upload id");
  if (!IsSha256Hex(expected_sha256)) {
    return InvalidArgument("the expected SHA-256 must be 64 lowercase hex digits");
  }
  std::lock_guard lock(LockFor(upload_id));
  std::string partial = PartialPath(upload_id);
  if (::access(partial.c_str(), F_OK) != 0) {
    return NotFound("no upload " + std::string(upload_id));
  }
  return Seal(partial, expected_sha256);
}

Result<BlobInfo> BlobStore::Seal(const std::string& source, std::string_view expected_sha256) {
  UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open blob upload");
  QUELL_ASSIGN_OR_RETURN(FileHashes hashes, HashFd(fd.get()));
  if (!expected_sha256.empty() && hashes.sha256 != expected_sha256) {
    (void)RemoveFile(source);
    return InvalidArgument("upload does not match its SHA-256: expected " +
                           std::string(expected_sha256) + ", received " + hashes.sha256 +
                           " (" + std::to_string(hashes.size) + " bytes); send it again");
  }
  BlobInfo info{.sha256 = hashes.sha256, .size = hashes.size};
  std::string target = BlobPath(info.sha256);
  std::string bucket = target.substr(0, target.rfind('/'));
  QUELL_RETURN_IF_ERROR(MakeDirs(bucket));
  if (::access(target.c_str(), F_OK) == 0) {  // the same content is stored already
    (void)RemoveFile(source);
    return info;
  }
  if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync blob");
  if (::chmod(source.c_str(), 0400) != 0) return ErrnoStatus("chmod blob");
  if (::rename(source.c_str(), target.c_str()) != 0) return ErrnoStatus("rename blob");
  QUELL_RETURN_IF_ERROR(SyncDir(bucket));
  return info;
}

Status BlobStore::Abort(std::string_view upload_id) {
  if (!IsPlainName(upload_id, 128)) return InvalidArgument("invalid upload id");
  std::lock_guard lock(LockFor(upload_id));
  return RemoveFile(PartialPath(upload_id));
}

Result<BlobInfo> BlobStore::Put(std::string_view bytes) {
  if (bytes.size() > options_.max_blob_bytes) {
    return ResourceExhausted("content exceeds the limit of " +
                             std::to_string(options_.max_blob_bytes) + " bytes");
  }
  // A private partial name: concurrent Puts of the same content never share a file.
  std::string source = PartialPath("put-" + RandomHex(12));
  {
    UniqueFd fd(::open(source.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return ErrnoStatus("create blob");
    if (Status s = WriteAll(fd.get(), 0, bytes); !s.ok()) {
      (void)RemoveFile(source);
      return s;
    }
  }
  Result<BlobInfo> sealed = Seal(source, "");
  if (!sealed.ok()) (void)RemoveFile(source);
  return sealed;
}

Result<std::string> BlobStore::PathOf(std::string_view sha256) const {
  if (!IsSha256Hex(sha256)) return NotFound("no blob " + std::string(sha256.substr(0, 80)));
  std::string path = BlobPath(sha256);
  if (::access(path.c_str(), R_OK) != 0) return NotFound("no blob " + std::string(sha256));
  return path;
}

Result<BlobInfo> BlobStore::Stat(std::string_view sha256) const {
  QUELL_ASSIGN_OR_RETURN(std::string path, PathOf(sha256));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat blob");
  return BlobInfo{.sha256 = std::string(sha256), .size = static_cast<uint64_t>(st.st_size)};
}

Status BlobStore::Remove(std::string_view sha256) {
  if (!IsSha256Hex(sha256)) return InvalidArgument("invalid blob name");
  return RemoveFile(BlobPath(sha256));
}

size_t BlobStore::ReapPartials(UnixMillis before) {
  Result<std::vector<std::string>> names = ListFiles(dir_ + "/partial");
  if (!names.ok()) return 0;
  size_t removed = 0;
  for (const std::string& name : *names) {
    std::lock_guard lock(LockFor(name));
    std::string path = PartialPath(name);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;
    UnixMillis modified = static_cast<UnixMillis>(st.st_mtim.tv_sec) * 1000 +
                          st.st_mtim.tv_nsec / 1'000'000;
    if (modified < before && RemoveFile(path).ok()) ++removed;
  }
  return removed;
}

}  // namespace quell::server
