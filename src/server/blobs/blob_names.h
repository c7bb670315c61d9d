// The names blobs and their uploads go by. Each ends up in a file path or a response header,
// so the rules are strict and live in one place.
#pragma once

#include <cstddef>
#include <string_view>

namespace quell::server {

// 1..max_length characters of [A-Za-z0-9._-], not starting with '.': safe as a file name
// (no separator, no "..", no hidden file) and inside a quoted header value.
inline bool IsPlainName(std::string_view name, size_t max_length) {
  if (name.empty() || name.size() > max_length || name.front() == '.') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// A blob's name: 64 lowercase hex digits.
inline bool IsSha256Hex(std::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace quell::server
