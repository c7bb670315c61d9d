// multipart/form-data (RFC 7578 over RFC 2046's multipart syntax): the body Defender's
// library upload takes. A pure, strict parser over bytes already in memory; nothing is
// copied out of the body.
//
// Strict on purpose: a body is either well-formed or refused with InvalidArgument whose
// message says what is wrong (no boundary, no closing boundary, a part without
// Content-Disposition, too many parts, headers too long). Lines end in CRLF; the preamble
// before the first boundary and the epilogue after the closing one are ignored; whitespace
// after a boundary (RFC 2046 "transport padding") is allowed. Part headers other than
// Content-Disposition and Content-Type are ignored.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quell::server::http {

struct MultipartPart {
  std::string name;          // Content-Disposition name="..."; never empty
  std::string filename;      // filename="..."; "" when absent (see has_filename)
  bool has_filename = false;  // filename="" (a browser's empty file input) still sets this
  std::string content_type;  // the part's Content-Type; "" when absent
  std::string_view data;     // the part's bytes, pointing into the parsed body
};

struct MultipartLimits {
  size_t max_header_bytes = 8 << 10;  // of one part's header block
  size_t max_parts = 32;
};

// The boundary parameter of a "multipart/form-data; boundary=..." Content-Type (the value
// may be quoted). InvalidArgument when the type is another one or the boundary is missing,
// empty, longer than 70 characters or contains characters RFC 2046 does not allow.
Result<std::string> MultipartBoundary(std::string_view content_type);

// Parses `body` sent with `content_type` into its parts, in order. The parts' data views
// point into `body`, which must outlive them.
Result<std::vector<MultipartPart>> ParseMultipartForm(std::string_view content_type,
                                                      std::string_view body,
                                                      const MultipartLimits& limits = {});

}  // namespace quell::server::http
