// $filter/$top/$skip/$orderby from the URL through ParseODataQuery. The input is split at the
// first three NUL bytes into the four option values.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/api/odata_query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  std::string parts[4];
  size_t part = 0;
  for (char c : input) {
    if (c == '\0' && part < 3) {
      ++part;
    } else {
      parts[part].push_back(c);
    }
  }
  std::map<std::string, std::string> query = {{"$filter", parts[0]}};
  if (part >= 1) query["$top"] = parts[1];
  if (part >= 2) query["$skip"] = parts[2];
  if (part >= 3) query["$orderby"] = parts[3];
  auto parsed = quell::server::ParseODataQuery(query, {"status", "machineId", "type"}, 10000,
                                               {"lastActivity", "severity"});
  if (parsed.ok()) {
    if (parsed->top > 10000) std::abort();
    for (const auto& [field, value] : parsed->equals) {
      if (field != "status" && field != "machineId" && field != "type") std::abort();
    }
    if (parsed->order_by && parsed->order_by->field != "lastActivity" &&
        parsed->order_by->field != "severity") {
      std::abort();
    }
  } else if (parsed.status().code() != quell::StatusCode::kInvalidArgument) {
    std::abort();
  }
  return 0;
}
