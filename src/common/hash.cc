#include "common/hash.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

namespace quell {
namespace {

std::string Hex(const unsigned char* md, unsigned int len) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

Result<FileHashes> HashFd(int fd, uint64_t max_bytes) {
  MdCtx sha256(EVP_MD_CTX_new(), EVP_MD_CTX_free), sha1(EVP_MD_CTX_new(), EVP_MD_CTX_free),
      md5(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!sha256 || !sha1 || !md5 || EVP_DigestInit_ex(sha256.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestInit_ex(sha1.get(), EVP_sha1(), nullptr) != 1 ||
      EVP_DigestInit_ex(md5.get(), EVP_md5(), nullptr) != 1) {
    return Internal("cannot initialise the digests");
  }
  std::vector<unsigned char> buf(64 * 1024);
  FileHashes out;
  while (true) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(out.size));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read");
    }
    if (n == 0) break;
    out.size += static_cast<uint64_t>(n);
    if (out.size > max_bytes) {
      return ResourceExhausted("larger than " + std::to_string(max_bytes) + " bytes");
    }
    EVP_DigestUpdate(sha256.get(), buf.data(), static_cast<size_t>(n));
    EVP_DigestUpdate(sha1.get(), buf.data(), static_cast<size_t>(n));
    EVP_DigestUpdate(md5.get(), buf.data(), static_cast<size_t>(n));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(sha256.get(), md, &len);
  out.sha256 = Hex(md, len);
  EVP_DigestFinal_ex(sha1.get(), md, &len);
  out.sha1 = Hex(md, len);
  EVP_DigestFinal_ex(md5.get(), md, &len);
  out.md5 = Hex(md, len);
  return out;
}

}  // namespace quell
