// The subset of OData v4 query options the Defender API documents for list endpoints:
// $filter as `field eq 'value'` terms joined by `and`, $top and $skip. Parsing is pure and
// fuzzed (fuzz/odata_query_fuzz.cc): the input comes straight from the URL.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell::server {

struct ODataQuery {
  std::vector<std::pair<std::string, std::string>> equals;  // (field, value), in order
  size_t top = 0;    // 0 = not given
  size_t skip = 0;
};

// `allowed_fields` lists the fields $filter may name; `max_top` caps $top (Defender: 10,000).
// InvalidArgument says exactly what is wrong ("$filter: unknown field 'colour'").
Result<ODataQuery> ParseODataQuery(const std::map<std::string, std::string>& query,
                                   const std::vector<std::string>& allowed_fields,
                                   size_t max_top);

}  // namespace quell::server
