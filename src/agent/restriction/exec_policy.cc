#include "agent/restriction/exec_policy.h"

#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "common/hash.h"

namespace quell::agent {
namespace {

std::string FdPath(int fd) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

size_t FileKeyHash::operator()(const FileKey& k) const {
  size_t h = std::hash<uint64_t>()(k.ino);
  auto mix = [&h](uint64_t v) { h ^= std::hash<uint64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(k.dev);
  mix(static_cast<uint64_t>(k.size));
  mix(static_cast<uint64_t>(k.mtime_ns));
  mix(static_cast<uint64_t>(k.ctime_ns));
  return h;
}

Result<FileKey> KeyOfFd(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return ErrnoStatus("fstat");
  return FileKey{.dev = st.st_dev,
                 .ino = st.st_ino,
                 .size = st.st_size,
                 .mtime_ns = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec,
                 .ctime_ns = st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec};
}

Result<FileDigests> DigestFd(int fd) {
  QUELL_ASSIGN_OR_RETURN(FileHashes h, HashFd(fd));
  return FileDigests{.sha256 = std::move(h.sha256), .sha1 = std::move(h.sha1),
                     .md5 = std::move(h.md5)};
}

std::optional<std::string> NormaliseSha256(std::string_view text) {
  if (text.size() != 64) return std::nullopt;
  std::string out;
  for (char c : text) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    out.push_back(c);
  }
  return out;
}

ExecPolicy::ExecPolicy(PackageIndex packages, ExecPolicyOptions options)
    : packages_(std::move(packages)), options_(std::move(options)) {
  for (const std::string& h : options_.allow_sha256) {
    if (auto n = NormaliseSha256(h)) allow_.insert(*n);
  }
}

void ExecPolicy::ReplacePackages(PackageIndex packages) {
  packages_ = std::move(packages);
  cache_.clear();
}

Result<ExecVerdict> ExecPolicy::Evaluate(int fd) {
  ++counters_.evaluations;
  QUELL_ASSIGN_OR_RETURN(FileKey key, KeyOfFd(fd));
  if (auto it = cache_.find(key); it != cache_.end()) {
    ++counters_.cache_hits;
    ExecVerdict v = it->second;
    v.cached = true;
    return v;
  }
  Status error;
  ExecVerdict v = Decide(fd, key, error);
  if (!error.ok()) return error;
  if (cache_.size() >= options_.max_cache_entries) cache_.clear();
  cache_.emplace(key, v);
  return v;
}

ExecVerdict ExecPolicy::Decide(int fd, const FileKey& key, Status& error) {
  ExecVerdict v;
  v.path = FdPath(fd);
  v.size = key.size;
  if (options_.self_key && *options_.self_key == key) {
    v.approved = true;
    v.reason = "agent";
    return v;
  }
  const PackageFile* recorded = packages_.Find(v.path);
  if (recorded) v.package = recorded->package;
  if (key.size > options_.max_file_bytes) {
    v.reason = "too large to verify";
    return v;
  }
  Result<FileDigests> digests = DigestFd(fd);
  if (!digests.ok()) {
    error = digests.status();
    return v;
  }
  ++counters_.hashed;
  v.sha256 = digests->sha256;
  v.sha1 = digests->sha1;
  v.md5 = digests->md5;
  if (!options_.self_sha256.empty() && v.sha256 == options_.self_sha256) {
    v.approved = true;
    v.reason = "agent";
  } else if (allow_.contains(v.sha256)) {
    v.approved = true;
    v.reason = "allow-list";
  } else if (recorded && recorded->md5 == digests->md5) {
    v.approved = true;
    v.reason = "package:" + recorded->package;
  } else {
    v.reason = recorded ? "modified package file" : "not from a package";
  }
  return v;
}

}  // namespace quell::agent
