// The subset of OData v4 query options the Defender API documents for list endpoints:
// $filter as `field eq 'value'` terms joined by `and`, $top, $skip, and $orderby as one
// `field [asc|desc]` term. Parsing is pure and
// fuzzed (fuzz/odata_query_fuzz.cc): the input comes straight from the URL.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell::server {

struct ODataOrderBy {
  std::string field;
  bool descending = false;  // OData's default direction is ascending
};

struct ODataQuery {
  std::vector<std::pair<std::string, std::string>> equals;  // (field, value), in order
  size_t top = 0;    // 0 = not given
  size_t skip = 0;
  std::optional<ODataOrderBy> order_by;  // not given: the endpoint's own order
};

// `allowed_fields` lists the fields $filter may name; `max_top` caps $top (Defender: 10,000);
// `orderby_fields` lists the fields $orderby may name (none: $orderby is refused).
// InvalidArgument says exactly what is wrong ("$filter: unknown field 'colour'").
Result<ODataQuery> ParseODataQuery(const std::map<std::string, std::string>& query,
                                   const std::vector<std::string>& allowed_fields,
                                   size_t max_top,
                                   const std::vector<std::string>& orderby_fields = {});

}  // namespace quell::server
