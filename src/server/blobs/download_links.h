// DownloadLinks: short-lived, self-contained download links for stored blobs — what
// Defender's getPackageUri and GetLiveResponseResultDownloadLink return.
//
// A link carries what it grants (the blob, the file name to save it as, the expiry) and an
// HMAC-SHA256 over exactly that, keyed with a secret only the server has. So a link needs no
// bearer token and no server-side state, and it cannot be extended, renamed or pointed at
// another blob. The key is created once (32 random bytes, mode 0600); replacing the key file
// revokes every link ever issued.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"

namespace quell::server {

struct DownloadGrant {
  std::string sha256;     // the blob
  std::string file_name;  // 1-128 characters of [A-Za-z0-9._-], used for Content-Disposition
  UnixMillis expires = 0;

  friend bool operator==(const DownloadGrant&, const DownloadGrant&) = default;
};

class DownloadLinks {
 public:
  // Reads the key at `key_path`, creating it first when missing.
  static Result<DownloadLinks> Open(const std::string& key_path);
  // `key`: at least 32 bytes of secret.
  explicit DownloadLinks(std::string key);

  // The URL-safe token for `grant` (InvalidArgument for a malformed blob or file name).
  Result<std::string> Token(const DownloadGrant& grant) const;
  // The grant a token carries. PermissionDenied when it was not issued with this key (or was
  // altered) or has expired at `now`, with a message saying which; InvalidArgument when it is
  // not a token at all.
  Result<DownloadGrant> Verify(std::string_view token, UnixMillis now) const;

 private:
  std::string Mac(std::string_view payload) const;

  std::string key_;
};

}  // namespace quell::server
