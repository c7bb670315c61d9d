#include "server/api/odata_query.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace quell::server {
namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  void SkipSpaces() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  bool AtEnd() {
    SkipSpaces();
    return pos_ >= s_.size();
  }
  std::string Word() {
    SkipSpaces();
    size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                s_[pos_] == '_' || s_[pos_] == '/')) {
      ++pos_;
    }
    return std::string(s_.substr(start, pos_ - start));
  }
  // 'quoted value' with '' as an escaped quote.
  Result<std::string> Quoted() {
    SkipSpaces();
    if (pos_ >= s_.size() || s_[pos_] != '\'') return InvalidArgument("expected a 'quoted' value");
    ++pos_;
    std::string out;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '\'') {
        if (pos_ < s_.size() && s_[pos_] == '\'') {
          out.push_back('\'');
          ++pos_;
          continue;
        }
        return out;
      }
      out.push_back(c);
    }
    return InvalidArgument("unterminated quoted value");
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

Result<size_t> ParseCount(const std::string& name, const std::string& text) {
  size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return InvalidArgument(name + " must be a non-negative integer, not '" + text + "'");
  }
  return value;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseFilter(
    const std::string& filter, const std::vector<std::string>& allowed) {
  std::vector<std::pair<std::string, std::string>> out;
  Scanner scan(filter);
  while (true) {
    std::string field = scan.Word();
    if (field.empty()) return InvalidArgument("$filter: expected a field name");
    if (std::find(allowed.begin(), allowed.end(), field) == allowed.end()) {
      std::string list;
      for (const auto& f : allowed) list += (list.empty() ? "" : ", ") + f;
      return InvalidArgument("$filter: unknown field '" + field + "' (supported: " + list + ")");
    }
    std::string op = scan.Word();
    if (op != "eq") {
      return InvalidArgument("$filter: only 'eq' is supported, not '" + op + "'");
    }
    Result<std::string> value = scan.Quoted();
    if (!value.ok()) return value.status().WithContext("$filter");
    out.emplace_back(field, *value);
    if (scan.AtEnd()) return out;
    std::string conj = scan.Word();
    if (conj != "and") {
      return InvalidArgument("$filter: only 'and' may join terms, not '" + conj + "'");
    }
  }
}

std::string List(const std::vector<std::string>& fields) {
  std::string list;
  for (const auto& f : fields) list += (list.empty() ? "" : ", ") + f;
  return list;
}

// One `field [asc|desc]` term.
Result<ODataOrderBy> ParseOrderBy(const std::string& text, const std::vector<std::string>& allowed) {
  if (allowed.empty()) return InvalidArgument("unsupported query option '$orderby' here");
  if (text.find(',') != std::string::npos) {
    return InvalidArgument("$orderby: only one field is supported");
  }
  Scanner scan(text);
  ODataOrderBy out;
  out.field = scan.Word();
  if (out.field.empty()) return InvalidArgument("$orderby: expected a field name");
  if (std::find(allowed.begin(), allowed.end(), out.field) == allowed.end()) {
    return InvalidArgument("$orderby: unknown field '" + out.field + "' (supported: " +
                           List(allowed) + ")");
  }
  if (scan.AtEnd()) return out;
  std::string direction = scan.Word();
  if (direction == "desc") {
    out.descending = true;
  } else if (direction != "asc") {
    return InvalidArgument("$orderby: direction must be 'asc' or 'desc'");
  }
  if (!scan.AtEnd()) return InvalidArgument("$orderby: unexpected text after the direction");
  return out;
}

}  // namespace

Result<ODataQuery> ParseODataQuery(const std::map<std::string, std::string>& query,
                                   const std::vector<std::string>& allowed_fields,
                                   size_t max_top,
                                   const std::vector<std::string>& orderby_fields) {
  ODataQuery out;
  for (const auto& [key, value] : query) {
    if (key == "$filter") {
      QUELL_ASSIGN_OR_RETURN(out.equals, ParseFilter(value, allowed_fields));
    } else if (key == "$top") {
      QUELL_ASSIGN_OR_RETURN(out.top, ParseCount("$top", value));
      if (out.top == 0 || out.top > max_top) {
        return InvalidArgument("$top must be between 1 and " + std::to_string(max_top));
      }
    } else if (key == "$skip") {
      QUELL_ASSIGN_OR_RETURN(out.skip, ParseCount("$skip", value));
    } else if (key == "$orderby") {
      QUELL_ASSIGN_OR_RETURN(out.order_by, ParseOrderBy(value, orderby_fields));
    } else if (!key.empty() && key[0] == '$') {
      return InvalidArgument("unsupported query option '" + key + "'");
    }
  }
  return out;
}

}  // namespace quell::server
