#include "cli/downloads.h"

#include <fcntl.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/action_progress.h"
#include "common/unique_fd.h"

namespace quell::cli {

std::string LinkTarget(const std::string& link) {
  if (link.starts_with("/")) return link;
  size_t scheme = link.find("://");
  size_t slash = scheme == std::string::npos ? std::string::npos : link.find('/', scheme + 3);
  return slash == std::string::npos ? "" : link.substr(slash);
}

std::string HumanSize(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", value, units[unit]);
  return buf;
}

VerifiedDownload DownloadVerified(CliContext& ctx, const ApiClient& client,
                                  const std::string& target, const std::string& path,
                                  const std::string& label, const std::string& expected_sha256) {
  using Outcome = VerifiedDownload::Outcome;
  ByteProgress progress(ctx, label);
  Result<ApiResponse> got = client.Download(
      target, path, [&](uint64_t received, uint64_t total) { progress.Update(received, total); });
  progress.Done();
  if (!got.ok()) return {.outcome = Outcome::kTransportError, .error = got.status().message()};
  if (got->status / 100 != 2) {
    nlohmann::json body = nlohmann::json::parse(got->body, nullptr, false);
    std::string message = body.is_object() && body.contains("error")
                              ? Field(body["error"], "message")
                              : got->body.substr(0, 200);
    return {.outcome = Outcome::kRefused,
            .error = "download refused: " + message + " (HTTP " + std::to_string(got->status) +
                     ")"};
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  Result<FileHashes> hashes =
      fd ? HashFd(fd.get()) : Result<FileHashes>(ErrnoStatus("open " + path));
  if (!hashes.ok() || hashes->sha256 != expected_sha256) {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
    return {.outcome = Outcome::kDigestMismatch};
  }
  return {.outcome = Outcome::kSaved, .hashes = *hashes};
}

}  // namespace quell::cli
