// Identifiers: random UUIDs (v4) for devices, actions and tokens, and random secrets.
#pragma once

#include <string>

namespace quell {

// "5382f7ea-7557-4ab7-9782-d50480024a4e". Thread-safe; uses the OS CSPRNG.
std::string NewUuid();

// `bytes` random bytes from the OS CSPRNG, hex-encoded (2*bytes characters).
std::string RandomHex(size_t bytes);

}  // namespace quell
