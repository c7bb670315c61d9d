// PE files through ReadAuthenticodeBytes: whatever the bytes (a hostile PE on a file share),
// the parser returns a result or InvalidArgument, never crashes, reads out of bounds or
// calls a mangled signature valid.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "agent/indicators/authenticode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto info = quell::agent::ReadAuthenticodeBytes(std::span<const uint8_t>(data, size));
  if (!info.ok()) {
    if (info.status().code() != quell::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  for (const auto& s : info->signatures) {
    if (s.valid != s.problem.empty()) std::abort();
    if (s.valid && s.signer_chain.empty()) std::abort();
  }
  for (const auto& t : info->thumbprints) {
    if (t.size() != 40) std::abort();
  }
  return 0;
}
