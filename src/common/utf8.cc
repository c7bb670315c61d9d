#include "common/utf8.h"

#include <algorithm>
#include <cstdint>

namespace quell {
namespace {

// 1..4 for a byte that may start a sequence of that length, 0 for one that cannot.
size_t LeadLength(unsigned char b) {
  return b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
}

bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

}  // namespace

std::string ValidUtf8(std::string_view in, InvalidUtf8 invalid) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const auto b = static_cast<unsigned char>(in[i]);
    const size_t len = LeadLength(b);
    bool ok = len > 0 && i + len <= in.size();
    uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    for (size_t k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(in[i + k]);
      ok = IsContinuation(c);
      cp = (cp << 6) | (c & 0x3F);
    }
    if (ok) {
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
      continue;
    }
    if (invalid == InvalidUtf8::kReplacementCharacter) {
      out += "\xEF\xBF\xBD";
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xF];
    }
    ++i;
  }
  return out;
}

size_t IncompleteUtf8Tail(std::string_view text) {
  for (size_t k = 1; k <= 3 && k <= text.size(); ++k) {
    const auto b = static_cast<unsigned char>(text[text.size() - k]);
    if (IsContinuation(b)) continue;
    const size_t len = LeadLength(b);
    return len > k ? k : 0;
  }
  return 0;
}

size_t Utf8ChunkSize(std::string_view text, size_t max_bytes) {
  size_t n = std::min(text.size(), max_bytes);
  while (n < text.size() && n > 0 && IsContinuation(static_cast<unsigned char>(text[n]))) --n;
  return n;
}

}  // namespace quell
