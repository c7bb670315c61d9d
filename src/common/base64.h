// Base64 (RFC 4648 §4, padded) for bytes carried in JSON, and its URL-safe form (§5, without
// padding) for tokens that travel inside URLs.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace quell {

std::string Base64Encode(std::string_view bytes);
// InvalidArgument for a length that is not a multiple of 4 or a character outside the alphabet.
Result<std::string> Base64Decode(std::string_view text);

std::string Base64UrlEncode(std::string_view bytes);
// Accepts exactly what Base64UrlEncode writes (unpadded, unused bits zero); InvalidArgument
// otherwise.
Result<std::string> Base64UrlDecode(std::string_view text);

}  // namespace quell
