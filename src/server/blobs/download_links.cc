#include "server/blobs/download_links.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <charconv>

#include "common/base64.h"
#include "common/files.h"
#include "server/blobs/blob_names.h"

namespace quell::server {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kMacBytes = 32;

}  // namespace

Result<DownloadLinks> DownloadLinks::Open(const std::string& key_path) {
  Result<std::string> key = ReadFile(key_path);
  if (!key.ok()) {
    std::string fresh(kKeyBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(fresh.data()), kKeyBytes) != 1) {
      return Internal("no randomness for the download link key");
    }
    QUELL_RETURN_IF_ERROR(WriteFileAtomic(key_path, fresh, 0600));
    key = std::move(fresh);
  }
  if (key->size() < kKeyBytes) {
    return FailedPrecondition("download link key " + key_path + " is shorter than 32 bytes");
  }
  return DownloadLinks(std::move(*key));
}

DownloadLinks::DownloadLinks(std::string key) : key_(std::move(key)) {}

std::string DownloadLinks::Mac(std::string_view payload) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

// Token: base64url("<sha256>/<file name>/<expires ms>") "." base64url(HMAC of that payload).
Result<std::string> DownloadLinks::Token(const DownloadGrant& grant) const {
  if (!IsSha256Hex(grant.sha256)) return InvalidArgument("download link: malformed blob name");
  if (!IsPlainName(grant.file_name, 128)) return InvalidArgument("download link: bad file name");
  std::string payload =
      grant.sha256 + "/" + grant.file_name + "/" + std::to_string(grant.expires);
  return Base64UrlEncode(payload) + "." + Base64UrlEncode(Mac(payload));
}

Result<DownloadGrant> DownloadLinks::Verify(std::string_view token, UnixMillis now) const {
  size_t dot = token.find('.');
  if (token.size() > 1024 || dot == std::string_view::npos) {
    return InvalidArgument("not a download link");
  }
  Result<std::string> payload = Base64UrlDecode(token.substr(0, dot));
  Result<std::string> mac = Base64UrlDecode(token.substr(dot + 1));
  if (!payload.ok() || !mac.ok()) return InvalidArgument("not a download link");
  std::string expected = Mac(*payload);
  if (mac->size() != kMacBytes || CRYPTO_memcmp(mac->data(), expected.data(), kMacBytes) != 0) {
    return PermissionDenied("the download link is not valid (altered, or issued with another key)");
  }
  // Signed by us, so well formed; parsed defensively all the same.
  size_t first = payload->find('/');
  size_t last = payload->rfind('/');
  if (first == std::string::npos || first == last) return InvalidArgument("not a download link");
  DownloadGrant grant{.sha256 = payload->substr(0, first),
                      .file_name = payload->substr(first + 1, last - first - 1)};
  std::string_view expires = std::string_view(*payload).substr(last + 1);
  auto [end, ec] = std::from_chars(expires.data(), expires.data() + expires.size(), grant.expires);
  if (ec != std::errc() || end != expires.data() + expires.size()) {
    return InvalidArgument("not a download link");
  }
  if (now >= grant.expires) {
    return PermissionDenied("the download link expired; ask for a new one");
  }
  return grant;
}

}  // namespace quell::server
