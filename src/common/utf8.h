// Making arbitrary bytes (process output, file names, error messages from a device) fit where
// only UTF-8 is allowed: proto3 `string` fields and JSON strings.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace quell {

// What becomes of each byte that does not start a valid UTF-8 sequence.
enum class InvalidUtf8 {
  kReplacementCharacter,  // U+FFFD, as text to read
  kHexEscape,             // "\xNN" (lower-case hex), so the original byte stays visible
};

// `in` with every byte that does not start a valid sequence replaced; valid sequences are kept
// as they are. Invalid: stray continuation bytes, overlong forms, surrogates (U+D800..U+DFFF),
// code points above U+10FFFF, and a sequence cut short (also at the end of `in`).
std::string ValidUtf8(std::string_view in, InvalidUtf8 invalid);

// The number of bytes (0..3) at the end of `text` that begin a multi-byte sequence `text` does
// not complete, i.e. what to hold back when more bytes of the same stream may follow.
size_t IncompleteUtf8Tail(std::string_view text);

// The largest n <= max_bytes such that text[0, n) does not end inside a UTF-8 sequence: the
// place to cut a chunk. REQUIRES: `text` is valid UTF-8 (else n may be 0 for max_bytes > 0).
size_t Utf8ChunkSize(std::string_view text, size_t max_bytes);

}  // namespace quell
