#include "server/store/library_file_name.h"

#include <algorithm>
#include <string>

namespace quell::server {
namespace {

constexpr size_t kMaxNameLength = 128;

// A name as it may appear in a message: long ones shortened.
std::string Shown(std::string_view name) {
  return name.size() <= 64 ? std::string(name) : std::string(name.substr(0, 61)) + "...";
}

}  // namespace

Status ValidateLibraryFileName(std::string_view name) {
  if (name.empty()) return InvalidArgument("a library file name is required");
  if (name.size() > kMaxNameLength) {
    return InvalidArgument("'" + Shown(name) + "' is not a valid library file name: it has " +
                           std::to_string(name.size()) + " characters, at most " +
                           std::to_string(kMaxNameLength) + " are allowed");
  }
  bool plain = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
  });
  if (!plain) {
    return InvalidArgument("'" + Shown(name) + "' is not a valid library file name: use "
                           "letters, digits, '-', '_' and '.'");
  }
  if (name.front() == '.') {
    return InvalidArgument("'" + Shown(name) + "' is not a valid library file name: it must "
                           "not start with '.'");
  }
  if (name.find("..") != std::string_view::npos) {
    return InvalidArgument("'" + Shown(name) + "' is not a valid library file name: it must "
                           "not contain '..'");
  }
  return Status::Ok();
}

}  // namespace quell::server
