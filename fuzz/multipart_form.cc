// multipart/form-data bodies (library uploads from any admin token) through
// ParseMultipartForm. Input: the Content-Type header, a newline, then the body. The parser
// never reads outside the body, every part it returns lies inside the body and is named,
// and a parsed form written out again parses to the same parts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/api/multipart_form.h"

namespace {

using quell::server::http::MultipartPart;
using quell::server::http::ParseMultipartForm;

bool Plain(std::string_view text) { return text.find_first_of("\"\\\r\n") == text.npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t newline = input.find('\n');
  std::string_view content_type = input.substr(0, newline);
  std::string_view body = newline == input.npos ? std::string_view() : input.substr(newline + 1);
  // A copy of exactly the body, so that a read past its end is caught by ASan.
  const std::string owned(body);
  auto parts = ParseMultipartForm(content_type, owned);
  if (!parts.ok()) {
    if (parts.status().message().empty()) std::abort();
    return 0;
  }
  auto boundary = quell::server::http::MultipartBoundary(content_type);
  if (!boundary.ok() || parts->empty() || parts->size() > 32) std::abort();
  const std::string delimiter = "\r\n--" + *boundary;
  bool plain = true;
  for (const MultipartPart& part : *parts) {
    if (part.name.empty()) std::abort();
    if (part.data.data() < owned.data() ||
        part.data.data() + part.data.size() > owned.data() + owned.size()) {
      std::abort();
    }
    if (part.data.find(delimiter) != std::string_view::npos) std::abort();
    plain = plain && Plain(part.name) && Plain(part.filename) && Plain(part.content_type);
  }
  if (!plain) return 0;
  std::string again;
  for (const MultipartPart& part : *parts) {
    again += "--" + *boundary + "\r\nContent-Disposition: form-data; name=\"" + part.name + "\"";
    if (part.has_filename) again += "; filename=\"" + part.filename + "\"";
    again += "\r\n";
    if (!part.content_type.empty()) again += "Content-Type: " + part.content_type + "\r\n";
    again += "\r\n" + std::string(part.data) + "\r\n";
  }
  again += "--" + *boundary + "--\r\n";
  auto reparsed = ParseMultipartForm(content_type, again);
  if (!reparsed.ok() || reparsed->size() != parts->size()) std::abort();
  for (size_t i = 0; i < parts->size(); ++i) {
    const MultipartPart& a = (*parts)[i];
    const MultipartPart& b = (*reparsed)[i];
    if (a.name != b.name || a.filename != b.filename || a.has_filename != b.has_filename ||
        a.content_type != b.content_type || a.data != b.data) {
      std::abort();
    }
  }
  return 0;
}
