// Cryptographic digests as lowercase hex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace quell {

std::string Sha256Hex(std::string_view data);

// The three digests file indicators and Defender's file resources name a file by.
struct FileHashes {
  std::string sha256, sha1, md5;  // lowercase hex
  uint64_t size = 0;              // bytes hashed

  friend bool operator==(const FileHashes&, const FileHashes&) = default;
};

// SHA-256, SHA-1 and MD5 of everything readable through `fd`, in one streaming pass with
// pread (the file offset is untouched; memory use is one 64 KiB buffer). Stops with
// ResourceExhausted once more than `max_bytes` were read.
Result<FileHashes> HashFd(int fd, uint64_t max_bytes = UINT64_MAX);

}  // namespace quell
