// REST request bodies through every action type's parse_body, as the route does it:
// JSON first, then the type's own validation. Only InvalidArgument may come back as an
// error, and a valid body always carries a non-empty Comment.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/actions/action_catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  nlohmann::json body = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) return 0;
  for (const quell::server::ActionTypeSpec& spec : quell::server::ActionCatalog()) {
    auto parsed = spec.parse_body(body);
    if (parsed.ok()) {
      if (parsed->comment.empty()) std::abort();
      if (!parsed->agent_parameters.is_object()) std::abort();
      (void)parsed->agent_parameters.dump();
    } else if (parsed.status().code() != quell::StatusCode::kInvalidArgument) {
      std::abort();
    }
  }
  return 0;
}
