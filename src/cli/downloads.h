// Fetching a file the server offers through a short-lived download link (an investigation
// package, a file from a live session) and checking it against the SHA-256 the server gave.
#pragma once

#include <cstdint>
#include <string>

#include "cli/api_client.h"
#include "cli/cli_context.h"
#include "common/hash.h"

namespace quell::cli {

// The path (and query) of a download link, to fetch through the configured server; "" when
// the link has none.
std::string LinkTarget(const std::string& link);

// "512 B", "1.5 KiB", "3.2 MiB", "1.1 GiB".
std::string HumanSize(uint64_t bytes);

struct VerifiedDownload {
  enum class Outcome { kSaved, kTransportError, kRefused, kDigestMismatch };
  Outcome outcome = Outcome::kSaved;
  // kTransportError: the client's message; kRefused: "download refused: <message> (HTTP <n>)".
  std::string error;
  FileHashes hashes;  // kSaved: of the file at `path`
};

// Downloads `target` (see LinkTarget) into `path`, drawing progress labelled `label` on
// ctx.err, then checks that the file's SHA-256 is `expected_sha256`. A file that does not
// match is removed. After a transport error or a refusal nothing was written to `path`.
VerifiedDownload DownloadVerified(CliContext& ctx, const ApiClient& client,
                                  const std::string& target, const std::string& path,
                                  const std::string& label, const std::string& expected_sha256);

}  // namespace quell::cli
