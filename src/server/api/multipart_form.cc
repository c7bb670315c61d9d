#include "server/api/multipart_form.h"

#include <algorithm>
#include <utility>

namespace quell::server::http {
namespace {

constexpr size_t kMaxBoundary = 70;  // RFC 2046 section 5.1.1

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = Lower(c);
  return out;
}

bool IsWhitespace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsWhitespace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsWhitespace(text.back())) text.remove_suffix(1);
  return text;
}

// RFC 2046 bchars.
bool IsBoundaryChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

// A header value of the form `type; name=value; name="quoted value"` (Content-Type,
// Content-Disposition). Parameter names are lower-cased; each may appear once.
struct HeaderValue {
  std::string type;  // lower-cased
  std::vector<std::pair<std::string, std::string>> params;

  const std::string* Param(std::string_view name) const {
    for (const auto& [key, value] : params) {
      if (key == name) return &value;
    }
    return nullptr;
  }
};

Result<HeaderValue> ParseHeaderValue(std::string_view text, std::string_view what) {
  HeaderValue out;
  size_t i = std::min(text.find(';'), text.size());
  out.type = LowerCopy(Trim(text.substr(0, i)));
  auto skip_whitespace = [&] {
    while (i < text.size() && IsWhitespace(text[i])) ++i;
  };
  while (i < text.size()) {  // text[i] == ';'
    ++i;
    skip_whitespace();
    if (i == text.size()) break;  // a trailing ';' is harmless
    size_t equals = text.find('=', i);
    std::string_view name =
        equals == std::string_view::npos ? std::string_view() : Trim(text.substr(i, equals - i));
    if (name.empty() || name.find(';') != std::string_view::npos) {
      return InvalidArgument(std::string(what) + ": malformed parameter in '" +
                             std::string(text) + "' (expected name=value)");
    }
    i = equals + 1;
    skip_whitespace();
    std::string value;
    if (i < text.size() && text[i] == '"') {
      bool closed = false;
      for (++i; i < text.size();) {
        char c = text[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < text.size()) c = text[i++];
        value.push_back(c);
      }
      if (!closed) {
        return InvalidArgument(std::string(what) + ": unterminated quoted value of '" +
                               std::string(name) + "'");
      }
      skip_whitespace();
      if (i < text.size() && text[i] != ';') {
        return InvalidArgument(std::string(what) + ": unexpected text after the quoted value of '" +
                               std::string(name) + "'");
      }
    } else {
      size_t end = std::min(text.find(';', i), text.size());
      value = std::string(Trim(text.substr(i, end - i)));
      i = end;
    }
    std::string key = LowerCopy(name);
    if (out.Param(key) != nullptr) {
      return InvalidArgument(std::string(what) + ": parameter '" + key + "' appears twice");
    }
    out.params.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

// Fills `part` from its header block (lines separated by CRLF, without the empty line).
Status ParsePartHeaders(std::string_view block, size_t number, MultipartPart& part) {
  const std::string where = "multipart part " + std::to_string(number);
  bool has_disposition = false;
  while (!block.empty()) {
    size_t end = std::min(block.find("\r\n"), block.size());
    std::string_view line = block.substr(0, end);
    block.remove_prefix(std::min(end + 2, block.size()));
    if (!line.empty() && IsWhitespace(line.front())) {
      return InvalidArgument(where + ": folded header lines are not supported");
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return InvalidArgument(where + ": malformed header line (expected 'Name: value')");
    }
    std::string name = LowerCopy(Trim(line.substr(0, colon)));
    std::string_view value = Trim(line.substr(colon + 1));
    if (name == "content-disposition") {
      if (has_disposition) return InvalidArgument(where + ": two Content-Disposition headers");
      has_disposition = true;
      QUELL_ASSIGN_OR_RETURN(HeaderValue disposition,
                             ParseHeaderValue(value, where + " Content-Disposition"));
      if (disposition.type != "form-data") {
        return InvalidArgument(where + ": Content-Disposition must be form-data, not '" +
                               disposition.type + "'");
      }
      const std::string* field = disposition.Param("name");
      if (field == nullptr || field->empty()) {
        return InvalidArgument(where + ": Content-Disposition has no field name (name=\"...\")");
      }
      part.name = *field;
      if (const std::string* filename = disposition.Param("filename")) {
        part.filename = *filename;
        part.has_filename = true;
      }
    } else if (name == "content-type") {
      part.content_type = std::string(value);
    }
  }
  if (!has_disposition) {
    return InvalidArgument(where + " has no Content-Disposition header; every part of a "
                           "multipart/form-data body needs 'Content-Disposition: form-data; "
                           "name=\"...\"'");
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> MultipartBoundary(std::string_view content_type) {
  QUELL_ASSIGN_OR_RETURN(HeaderValue value, ParseHeaderValue(content_type, "Content-Type"));
  if (value.type != "multipart/form-data") {
    return InvalidArgument("expected Content-Type multipart/form-data, got '" +
                           std::string(content_type) + "'");
  }
  const std::string* boundary = value.Param("boundary");
  if (boundary == nullptr || boundary->empty()) {
    return InvalidArgument("Content-Type multipart/form-data has no boundary parameter");
  }
  if (boundary->size() > kMaxBoundary) {
    return InvalidArgument("the multipart boundary is longer than 70 characters");
  }
  for (char c : *boundary) {
    if (!IsBoundaryChar(c)) {
      return InvalidArgument("the multipart boundary contains a character RFC 2046 does not "
                             "allow (use letters, digits and '()+_,-./:=?)");
    }
  }
  if (boundary->back() == ' ') {
    return InvalidArgument("the multipart boundary must not end with a space");
  }
  return *boundary;
}

Result<std::vector<MultipartPart>> ParseMultipartForm(std::string_view content_type,
                                                      std::string_view body,
                                                      const MultipartLimits& limits) {
  QUELL_ASSIGN_OR_RETURN(std::string boundary, MultipartBoundary(content_type));
  const std::string dash_boundary = "--" + boundary;
  const std::string delimiter = "\r\n" + dash_boundary;
  const std::string unterminated =
      "the multipart body ends without its closing boundary '" + dash_boundary + "--'";

  size_t pos = 0;
  if (body.substr(0, dash_boundary.size()) == dash_boundary) {
    pos = dash_boundary.size();
  } else {
    size_t found = body.find(delimiter);
    if (found == std::string_view::npos) {
      return InvalidArgument("the multipart body has no boundary line '" + dash_boundary +
                             "' (does the boundary in Content-Type match the body?)");
    }
    pos = found + delimiter.size();
  }

  std::vector<MultipartPart> parts;
  for (;;) {
    // Just after a boundary: "--" closes the body, otherwise a part follows the line end.
    if (body.substr(pos, 2) == "--") {
      if (parts.empty()) return InvalidArgument("the multipart body has no parts");
      return parts;
    }
    while (pos < body.size() && IsWhitespace(body[pos])) ++pos;
    if (pos >= body.size()) return InvalidArgument(unterminated);
    if (body.substr(pos, 2) != "\r\n") {
      return InvalidArgument("malformed multipart boundary line: '" + dash_boundary +
                             "' must be followed by CRLF or '--'");
    }
    pos += 2;
    const size_t number = parts.size() + 1;
    if (parts.size() == limits.max_parts) {
      return InvalidArgument("the multipart body has more than " +
                             std::to_string(limits.max_parts) + " parts");
    }

    // The header block ends at an empty line (or is empty: the part starts with one).
    size_t headers_end = pos;
    size_t data_start = pos + 2;
    if (body.substr(pos, 2) != "\r\n") {
      std::string_view window = body.substr(pos, limits.max_header_bytes + 4);
      size_t blank = window.find("\r\n\r\n");
      if (blank == std::string_view::npos || blank > limits.max_header_bytes) {
        if (window.size() <= limits.max_header_bytes) {
          return InvalidArgument("multipart part " + std::to_string(number) +
                                 ": its headers never end (no empty line); " + unterminated);
        }
        return InvalidArgument("multipart part " + std::to_string(number) +
                               ": headers exceed " + std::to_string(limits.max_header_bytes) +
                               " bytes");
      }
      headers_end = pos + blank;
      data_start = headers_end + 4;
    }
    MultipartPart part;
    QUELL_RETURN_IF_ERROR(
        ParsePartHeaders(body.substr(pos, headers_end - pos), number, part));

    size_t data_end = body.find(delimiter, data_start);
    if (data_end == std::string_view::npos) {
      return InvalidArgument("multipart part " + std::to_string(number) + " ('" + part.name +
                             "'): " + unterminated);
    }
    part.data = body.substr(data_start, data_end - data_start);
    parts.push_back(std::move(part));
    pos = data_end + delimiter.size();
  }
}

}  // namespace quell::server::http
