#include "common/ids.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace quell {
namespace {

void FillRandom(unsigned char* out, size_t n) {
  // RAND_bytes fails only when the OS CSPRNG is unusable; nothing sensible can go on then.
  if (RAND_bytes(out, static_cast<int>(n)) != 1) std::abort();
}

}  // namespace

std::string NewUuid() {
  unsigned char b[16];
  FillRandom(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> b(bytes);
  FillRandom(b.data(), b.size());
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : b) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace quell
