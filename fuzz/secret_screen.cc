// Text from the device (logs, process arguments, file names, config files an attacker wrote)
// through the investigation package's secret screen: whatever the input and however it is cut
// into chunks, the output is the same, and no line of it holds a private key header or a
// password hash.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/collect/secret_screen.h"

using quell::agent::collect::FindSecret;
using quell::agent::collect::RedactSecrets;
using quell::agent::collect::SecretRedactor;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the chunk size, the rest is the text.
  const size_t chunk = 1 + data[0] % 97;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  uint32_t removed = 0;
  const std::string whole = RedactSecrets(text, &removed);
  SecretRedactor pieces;
  std::string streamed;
  for (size_t at = 0; at < text.size(); at += chunk) streamed += pieces.Feed(text.substr(at, chunk));
  streamed += pieces.Finish();
  if (streamed != whole || pieces.removed() != removed) std::abort();
  // Screened line by line: no line of the output holds a key header or a password hash.
  std::string_view rest = whole;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    if (FindSecret(rest.substr(0, nl))) std::abort();
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  return 0;
}
