// Cryptographic digests as lowercase hex.
#pragma once

#include <string>
#include <string_view>

namespace quell {

std::string Sha256Hex(std::string_view data);

}  // namespace quell
