// The command lines of interactive live response sessions (any responder token sends them)
// through ParseLine. A parsed line has a command name and a known output format, no word
// holds a NUL, and its words quoted again parse back to the same words.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/live/live_line.h"

namespace {

using quell::server::live::kMaxLineBytes;
using quell::server::live::ParseLine;

// A word as a "..." quoted word: backslash and quote escaped, everything else literal.
std::string Quoted(const std::string& word) {
  std::string out = "\"";
  for (char c : word) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  auto parsed = ParseLine(line);
  if (!parsed.ok()) {
    if (parsed.status().message().empty()) std::abort();
    return 0;
  }
  if (parsed->argv.empty() || line.size() > kMaxLineBytes) std::abort();
  if (parsed->output_format != "table" && parsed->output_format != "json") std::abort();
  for (const std::string& word : parsed->argv) {
    if (word.find('\0') != std::string::npos) std::abort();
  }
  std::string again;
  for (const std::string& word : parsed->argv) again += (again.empty() ? "" : " ") + Quoted(word);
  if (again.size() > kMaxLineBytes) return 0;
  auto reparsed = ParseLine(again);
  if (!reparsed.ok() || reparsed->argv != parsed->argv || reparsed->background ||
      reparsed->output_format != "table") {
    std::abort();
  }
  return 0;
}
