#include "agent/actions/collect_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "agent/live/safe_paths.h"
#include "common/hash.h"
#include "common/utf8.h"

namespace quell::agent {
namespace {

using Json = nlohmann::json;

struct CollectRequest {
  std::string path;
  std::string sha256;  // "" when any content will do
};

Result<CollectRequest> ParseRequest(const Json& parameters) {
  if (!parameters.is_object()) return InvalidArgument("parameters must be an object");
  CollectRequest request;
  auto path = parameters.find("Path");
  if (path == parameters.end() || !path->is_string() || path->get<std::string>().empty()) {
    return InvalidArgument("'Path' is required and must be a string");
  }
  request.path = path->get<std::string>();
  if (request.path.front() != '/') return InvalidArgument("'Path' must be an absolute path");
  if (request.path.size() > live::kMaxGetFilePathChars) {
    return InvalidArgument("'Path' is longer than " +
                           std::to_string(live::kMaxGetFilePathChars) + " characters");
  }
  if (auto sha = parameters.find("Sha256"); sha != parameters.end()) {
    if (!sha->is_string()) return InvalidArgument("'Sha256' must be a string");
    request.sha256 = sha->get<std::string>();
    bool hex = std::all_of(request.sha256.begin(), request.sha256.end(), [](unsigned char c) {
      return std::isdigit(c) != 0 || (c >= 'a' && c <= 'f');
    });
    if (request.sha256.size() != 64 || !hex) {
      return InvalidArgument("'Sha256' must be 64 lowercase hex digits");
    }
  }
  return request;
}

// What a write to the file changes, whoever makes it: the change time moves with every write
// and cannot be set back by the writer.
bool SameVersion(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && a.st_ctim.tv_sec == b.st_ctim.tv_sec &&
         a.st_ctim.tv_nsec == b.st_ctim.tv_nsec && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
         a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

Status ChangedWhileSent(const std::string& path, const std::string& first,
                        const std::string& sent) {
  std::string digests = sent.empty() || sent == first
                            ? "SHA-256 " + first + " when collection started"
                            : "SHA-256 " + first + " when collection started, " + sent +
                                  " when it was sent";
  return FailedPrecondition(path + " changed while it was being collected (hash mismatch: " +
                            digests + "); collect it again once nothing writes to it");
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

CollectFileAction::CollectFileAction(CollectFileOptions options, ArtifactSender send)
    : options_(options), send_(std::move(send)) {}

const ActionSpec& CollectFileAction::Spec() const {
  static const ActionSpec spec{
      .type = "CollectFile",
      .undo_type = "",
      .description =
          "Sends one file to the server (resumable, SHA-256 checked, up to 3 GB), refusing "
          "devices, fifos, sockets, /proc, /sys, /dev and symlink loops. A file written to "
          "while it is sent is not collected.",
      .risk = "low",
      .parameters_schema = {{"type", "object"},
                            {"required", {"Path"}},
                            {"properties",
                             {{"Path", {{"type", "string"}}},
                              {"Sha256", {{"type", "string"}, {"pattern", "^[0-9a-f]{64}$"}}},
                              {"Comment", {{"type", "string"}}}}}},
  };
  return spec;
}

Status CollectFileAction::Validate(const Json& parameters) const {
  return ParseRequest(parameters).status();
}

Result<Json> CollectFileAction::Run(ActionContext& ctx) {
  QUELL_ASSIGN_OR_RETURN(CollectRequest request, ParseRequest(ctx.parameters));
  QUELL_ASSIGN_OR_RETURN(live::ReadableFile file,
                         live::CheckReadableFile(request.path, options_.max_bytes));
  ctx.report_progress(1, "hashing " + std::to_string(file.st.st_size >> 10) + " KiB");
  QUELL_ASSIGN_OR_RETURN(FileHashes hashes, HashFd(file.fd.get(), options_.max_bytes));
  if (!request.sha256.empty() && hashes.sha256 != request.sha256) {
    return FailedPrecondition(file.path + " has SHA-256 " + hashes.sha256 + ", not the " +
                              request.sha256 + " asked for");
  }
  if (ctx.stop.stop_requested()) return Cancelled("collection cancelled");

  // Sent through the descriptor that was checked and hashed: /proc/self/fd/<n> reopens this
  // very file, whatever has happened to the path since.
  Result<SentArtifact> sent = send_(
      ctx.action_id, kCollectedFileArtifact, "/proc/self/fd/" + std::to_string(file.fd.get()),
      ctx.stop, [&](uint64_t stored, uint64_t total) {
        uint64_t pct = total == 0 ? 99 : 1 + 98 * stored / total;
        ctx.report_progress(static_cast<uint32_t>(pct),
                            "uploaded " + std::to_string(stored >> 10) + " of " +
                                std::to_string(total >> 10) + " KiB");
      });
  struct stat after {};
  const bool changed = ::fstat(file.fd.get(), &after) != 0 || !SameVersion(file.st, after);
  if (!sent.ok()) {
    // The server refuses an upload whose bytes do not hash to what the sender announced.
    if (sent.status().code() == StatusCode::kInvalidArgument &&
        sent.status().message().find("does not match") != std::string::npos) {
      return ChangedWhileSent(file.path, hashes.sha256, "");
    }
    return sent.status().WithContext("upload " + file.path);
  }
  if (changed || sent->sha256 != hashes.sha256) {
    return ChangedWhileSent(file.path, hashes.sha256, sent->sha256);
  }
  return Json{{"Path", ValidUtf8(file.path, InvalidUtf8::kHexEscape)},
              {"FileName", ValidUtf8(BaseName(file.path), InvalidUtf8::kHexEscape)},
              {"Size", hashes.size},
              {"Sha256", hashes.sha256},
              {"Sha1", hashes.sha1},
              {"Md5", hashes.md5},
              {"Artifact", kCollectedFileArtifact}};
}

}  // namespace quell::agent
