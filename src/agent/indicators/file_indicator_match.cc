#include "agent/indicators/file_indicator_match.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>

#include "common/hash.h"
#include "common/logging.h"
#include "common/unique_fd.h"

namespace quell::agent {
namespace {

// Lower is stronger, as IndicatorSet ranks indicators with the same value.
int Rank(IndicatorAction a) {
  switch (a) {
    case IndicatorAction::kAllowed: return 0;
    case IndicatorAction::kAudit: return 1;
    case IndicatorAction::kBlockAndRemediate: return 2;
    case IndicatorAction::kBlock: return 3;
  }
  return 4;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<IndicatorMatch> MatchSignatureIndicator(const IndicatorSet& set,
                                                      const AuthenticodeInfo& info) {
  std::optional<IndicatorMatch> best;
  for (const auto* list : {&info.thumbprints, &info.thumbprints_sha256}) {
    for (const std::string& thumbprint : *list) {
      std::optional<IndicatorMatch> m =
          set.MatchCertificate(thumbprint, /*include_allowed=*/info.ValidlySignedBy(thumbprint));
      if (m && (!best || Rank(m->action) < Rank(best->action))) best = std::move(m);
    }
  }
  return best;
}

FileIndicatorMatcher::FileIndicatorMatcher(ReadSet read, FileIndicatorMatcherOptions options)
    : read_(std::move(read)), options_(std::move(options)) {}

std::optional<IndicatorMatch> FileIndicatorMatcher::Match(const FileToMatch& file) {
  std::optional<IndicatorMatch> hash_match;
  bool certificates = false;
  read_([&](const IndicatorSet& set) {
    hash_match = set.MatchFile(file.sha256, file.sha1, file.md5);
    certificates = set.HasCertificates();
  });
  if (hash_match || !certificates) return hash_match;
  std::shared_ptr<const AuthenticodeInfo> signature = Signature(file);
  if (!signature || signature->thumbprints.empty()) return std::nullopt;
  std::optional<IndicatorMatch> m;
  read_([&](const IndicatorSet& set) { m = MatchSignatureIndicator(set, *signature); });
  return m;
}

std::shared_ptr<const AuthenticodeInfo> FileIndicatorMatcher::Signature(const FileToMatch& file) {
  const std::string key = Lower(file.sha256);
  if (key.empty()) return nullptr;  // nothing ties the bytes we would read to this file
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      ++stats_.cache_hits;
      return it->second;
    }
  }
  UniqueFd owned;
  int fd = file.fd;
  if (fd < 0) {
    owned.Reset(::open(std::string(file.path).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!owned) {
      std::lock_guard lock(mutex_);
      ++stats_.read_errors;
      return nullptr;
    }
    fd = owned.get();
  }
  uint8_t head[2] = {};
  if (pread(fd, head, sizeof head, 0) != static_cast<ssize_t>(sizeof head) || !LooksLikePe(head)) {
    if (owned) return nullptr;  // not cached: the path may have been the wrong file
    std::lock_guard lock(mutex_);
    if (cache_.size() >= options_.max_cache_entries) cache_.clear();
    cache_.emplace(key, nullptr);
    return nullptr;
  }
  if (owned) {
    auto hashes = HashFd(fd, options_.limits.max_file_bytes);
    if (!hashes.ok() || hashes->sha256 != key) return nullptr;
  }
  std::shared_ptr<const AuthenticodeInfo> info;
  auto read = ReadAuthenticodeFd(fd, options_.limits);
  std::lock_guard lock(mutex_);
  ++stats_.signatures_read;
  if (read.ok()) {
    if (read->signed_pe) info = std::make_shared<const AuthenticodeInfo>(std::move(read).value());
  } else if (read.status().code() == StatusCode::kInvalidArgument) {
    Logger("agent.indicators")
        ->debug("no Authenticode signature read from {}: {}", file.path, read.status().message());
  } else {
    ++stats_.read_errors;  // I/O: not cached, the next exec tries again
    return nullptr;
  }
  if (cache_.size() >= options_.max_cache_entries) cache_.clear();
  cache_.emplace(key, info);
  return info;
}

FileIndicatorMatcher::Stats FileIndicatorMatcher::GetStats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace quell::agent
