#include "common/base64.h"

#include <openssl/evp.h>

#include <algorithm>

namespace quell {

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return InvalidArgument("base64 length is not a multiple of 4");
  std::string out(3 * text.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return InvalidArgument("malformed base64");
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts padding as zero bytes.
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out = Base64Encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

Result<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return InvalidArgument("malformed base64url length");
  std::string padded(text);
  for (char& c : padded) {
    if (c == '+' || c == '/' || c == '=') return InvalidArgument("malformed base64url");
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  padded.append((4 - padded.size() % 4) % 4, '=');
  QUELL_ASSIGN_OR_RETURN(std::string bytes, Base64Decode(padded));
  // One text per value: unused low bits must be zero, so a token cannot be varied unnoticed.
  if (Base64UrlEncode(bytes) != text) return InvalidArgument("non-canonical base64url");
  return bytes;
}

}  // namespace quell
