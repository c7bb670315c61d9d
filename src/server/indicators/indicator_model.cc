#include "server/indicators/indicator_model.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

namespace quell::server {
namespace {

using nlohmann::json;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Status ValueError(std::string message) { return InvalidArgument("indicatorValue: " + message); }

Result<std::string> NormalizeHash(std::string_view value, std::initializer_list<size_t> lengths,
                                  std::string_view what) {
  bool length_ok = std::find(lengths.begin(), lengths.end(), value.size()) != lengths.end();
  bool hex = std::all_of(value.begin(), value.end(),
                         [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (!length_ok || !hex) {
    std::string want;
    for (size_t n : lengths) want += (want.empty() ? "" : " or ") + std::to_string(n);
    return ValueError("'" + std::string(value) + "' is not a " + std::string(what) + " (" + want +
                      " hexadecimal digits)");
  }
  return Lower(value);
}

// Parses an IPv4 or IPv6 address; the canonical text and the family, or nullopt.
std::optional<std::pair<std::string, int>> ParseAddress(const std::string& text,
                                                        std::array<unsigned char, 16>* bytes) {
  char out[INET6_ADDRSTRLEN] = {};
  if (inet_pton(AF_INET, text.c_str(), bytes->data()) == 1) {
    inet_ntop(AF_INET, bytes->data(), out, sizeof out);
    return std::make_pair(std::string(out), AF_INET);
  }
  if (inet_pton(AF_INET6, text.c_str(), bytes->data()) == 1) {
    inet_ntop(AF_INET6, bytes->data(), out, sizeof out);
    return std::make_pair(std::string(out), AF_INET6);
  }
  return std::nullopt;
}

Result<std::string> NormalizeIp(std::string_view value) {
  size_t slash = value.find('/');
  std::string address(value.substr(0, slash));
  std::array<unsigned char, 16> bytes{};
  auto parsed = ParseAddress(address, &bytes);
  if (!parsed) {
    return ValueError("'" + std::string(value) +
                      "' is not an IPv4 or IPv6 address (optionally with a /prefix)");
  }
  if (slash == std::string_view::npos) return parsed->first;
  int max_prefix = parsed->second == AF_INET ? 32 : 128;
  std::string_view prefix_text = value.substr(slash + 1);
  int prefix = -1;
  auto [end, ec] =
      std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
  if (ec != std::errc() || end != prefix_text.data() + prefix_text.size() || prefix < 0 ||
      prefix > max_prefix) {
    return ValueError("'" + std::string(value) + "' has an invalid prefix length (0-" +
                      std::to_string(max_prefix) + ")");
  }
  if (prefix == max_prefix) return parsed->first;
  // Host bits must be zero: "10.1.2.3/8" is almost always a typo for something.
  std::array<unsigned char, 16> network = bytes;
  size_t length = parsed->second == AF_INET ? 4 : 16;
  for (size_t i = 0; i < length; ++i) {
    int bits = std::clamp(prefix - static_cast<int>(i) * 8, 0, 8);
    network[i] &= static_cast<unsigned char>(bits == 0 ? 0 : 0xff << (8 - bits));
  }
  if (network != bytes) {
    char out[INET6_ADDRSTRLEN] = {};
    inet_ntop(parsed->second, network.data(), out, sizeof out);
    return ValueError("'" + std::string(value) + "' has host bits set; the network is " +
                      std::string(out) + "/" + std::to_string(prefix));
  }
  return parsed->first + "/" + std::to_string(prefix);
}

Result<std::string> NormalizeDomain(std::string_view value) {
  std::string domain = Lower(value);
  if (!domain.empty() && domain.back() == '.') domain.pop_back();
  if (domain.empty()) return ValueError("the domain is empty");
  if (domain.find('*') != std::string::npos) {
    return ValueError("'" + std::string(value) +
                      "': wildcards are not supported; a domain also matches its subdomains");
  }
  if (domain.size() > 253) return ValueError("the domain is longer than 253 characters");
  std::array<unsigned char, 16> bytes{};
  if (ParseAddress(domain, &bytes)) {
    return ValueError("'" + std::string(value) + "' is an IP address; use type IpAddress");
  }
  size_t start = 0;
  while (true) {
    size_t dot = domain.find('.', start);
    std::string_view label =
        std::string_view(domain).substr(start, dot == std::string::npos ? dot : dot - start);
    bool chars_ok = std::all_of(label.begin(), label.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '_';
    });
    if (label.empty() || label.size() > 63 || !chars_ok || label.front() == '-' ||
        label.back() == '-') {
      bool non_ascii = std::any_of(label.begin(), label.end(),
                                   [](unsigned char c) { return c >= 0x80; });
      return ValueError("'" + std::string(value) + "' is not a valid domain name" +
                        (non_ascii ? " (write internationalized names in their xn-- form)" : ""));
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return domain;
}

Result<std::string> NormalizeUrl(std::string_view value) {
  std::string_view rest = value;
  std::string scheme = "http";
  if (size_t sep = rest.find("://"); sep != std::string_view::npos) {
    scheme = Lower(rest.substr(0, sep));
    rest.remove_prefix(sep + 3);
    if (scheme != "http" && scheme != "https") {
      return ValueError("'" + std::string(value) + "': only http and https URLs are supported");
    }
  }
  size_t path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path = path_start == std::string_view::npos ? "" : rest.substr(path_start);
  if (authority.find('@') != std::string_view::npos) {
    return ValueError("'" + std::string(value) + "': user information in URLs is not supported");
  }
  std::string_view host = authority;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return ValueError("'" + std::string(value) + "': bad IPv6 host");
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() && port.front() != ':') return ValueError("'" + std::string(value) + "': bad port");
    if (!port.empty()) port.remove_prefix(1);
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) return ValueError("'" + std::string(value) + "' has no host");
  if (!port.empty()) {
    unsigned number = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (ec != std::errc() || end != port.data() + port.size() || number == 0 || number > 65535) {
      return ValueError("'" + std::string(value) + "' has an invalid port");
    }
    if ((scheme == "http" && number == 80) || (scheme == "https" && number == 443)) port = {};
  }
  std::string host_text;
  std::array<unsigned char, 16> bytes{};
  if (auto address = ParseAddress(std::string(host), &bytes)) {
    host_text = address->second == AF_INET6 ? "[" + address->first + "]" : address->first;
  } else {
    Result<std::string> domain = NormalizeDomain(host);
    if (!domain.ok()) {
      return ValueError("'" + std::string(value) + "' does not have a valid host");
    }
    host_text = *domain;
  }
  std::string url = scheme + "://" + host_text;
  if (!port.empty()) url += ":" + std::string(port);
  if (path != "/") url += path;
  return url;
}

// Field names: Defender's camelCase, also accepted with a capital first letter (CSV headers).
std::string FieldName(std::string key) {
  if (!key.empty()) key[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(key[0])));
  if (key == "rbacGroups") key = "rbacGroupNames";  // the CSV template's column name
  return key;
}

Result<std::string> StringField(const json& value, std::string_view name, size_t max_length) {
  if (value.is_null()) return std::string();
  if (!value.is_string()) return InvalidArgument(std::string(name) + " must be a string");
  std::string text = value.get<std::string>();
  if (text.size() > max_length) {
    return InvalidArgument(std::string(name) + " is longer than " + std::to_string(max_length) +
                           " characters");
  }
  return text;
}

Result<bool> BoolField(const json& value, std::string_view name) {
  if (value.is_null()) return false;
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string()) {  // Defender documents generateAlert as an "Enum" True/False
    std::string text = Lower(Trim(value.get<std::string>()));
    if (text == "true") return true;
    if (text == "false" || text.empty()) return false;
  }
  return InvalidArgument(std::string(name) + " must be true or false");
}

Result<std::vector<std::string>> GroupsField(const json& value) {
  std::vector<std::string> groups;
  auto add = [&groups](std::string_view name) {
    name = Trim(name);
    if (!name.empty() && std::find(groups.begin(), groups.end(), name) == groups.end()) {
      groups.emplace_back(name);
    }
  };
  if (value.is_null()) return groups;
  if (value.is_string()) {  // the documented "comma-separated list"
    std::string text = value.get<std::string>();
    size_t start = 0;
    while (true) {
      size_t comma = text.find_first_of(",;", start);
      add(std::string_view(text).substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return groups;
  }
  if (value.is_array()) {
    for (const json& item : value) {
      if (!item.is_string()) return InvalidArgument("rbacGroupNames must be a list of strings");
      add(item.get<std::string>());
    }
    return groups;
  }
  return InvalidArgument("rbacGroupNames must be a list of strings or a comma-separated string");
}

std::string Names(std::initializer_list<std::string_view> names) {
  std::string out;
  for (std::string_view n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

}  // namespace

Result<std::string> NormalizeIndicatorValue(IndicatorType type, std::string_view raw) {
  std::string_view value = Trim(raw);
  if (value.empty()) return InvalidArgument("indicatorValue is required");
  if (value.size() > kMaxIndicatorValueLength) {
    return ValueError("longer than " + std::to_string(kMaxIndicatorValueLength) + " characters");
  }
  switch (type) {
    case IndicatorType::kFileSha1: return NormalizeHash(value, {40}, "SHA-1 hash");
    case IndicatorType::kFileSha256: return NormalizeHash(value, {64}, "SHA-256 hash");
    case IndicatorType::kFileMd5: return NormalizeHash(value, {32}, "MD5 hash");
    case IndicatorType::kCertificateThumbprint:
      return NormalizeHash(value, {40, 64}, "certificate thumbprint");
    case IndicatorType::kIpAddress: return NormalizeIp(value);
    case IndicatorType::kDomainName: return NormalizeDomain(value);
    case IndicatorType::kUrl: return NormalizeUrl(value);
  }
  return ValueError("unknown type");
}

std::string UrlHost(std::string_view url) {
  size_t sep = url.find("://");
  std::string_view rest = sep == std::string_view::npos ? url : url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (!rest.empty() && rest.front() == '[') return std::string(rest.substr(1, rest.find(']') - 1));
  return std::string(rest.substr(0, rest.rfind(':')));
}

bool ActionAllowedFor(IndicatorType type, IndicatorAction action) {
  switch (type) {
    case IndicatorType::kFileSha1:
    case IndicatorType::kFileSha256:
    case IndicatorType::kFileMd5: return true;
    case IndicatorType::kCertificateThumbprint:
      return action == IndicatorAction::kAllowed || action == IndicatorAction::kBlockAndRemediate;
    case IndicatorType::kIpAddress:
    case IndicatorType::kDomainName:
    case IndicatorType::kUrl: return action != IndicatorAction::kBlockAndRemediate;
  }
  return false;
}

Result<Indicator> ParseIndicatorSubmission(const json& body, UnixMillis now) {
  if (!body.is_object()) return InvalidArgument("an indicator must be a JSON object");
  std::map<std::string, const json*> fields;
  for (const auto& [key, value] : body.items()) {
    std::string name = FieldName(key);
    static const std::vector<std::string_view> kKnown = {
        "indicatorValue", "indicatorType",  "action",        "title",
        "description",    "severity",       "expirationTime", "recommendedActions",
        "rbacGroupNames", "generateAlert",  "application",    "educateUrl"};
    if (std::find(kKnown.begin(), kKnown.end(), name) == kKnown.end()) {
      return InvalidArgument("unknown field '" + key + "'");
    }
    fields[name] = &value;
  }
  auto get = [&fields](const std::string& name) -> const json& {
    static const json kNull;
    auto it = fields.find(name);
    return it == fields.end() ? kNull : *it->second;
  };

  Indicator ind;
  QUELL_ASSIGN_OR_RETURN(std::string type_text, StringField(get("indicatorType"), "indicatorType", 64));
  if (type_text.empty()) return InvalidArgument("indicatorType is required");
  std::optional<IndicatorType> type = ParseIndicatorType(type_text);
  if (!type) {
    return InvalidArgument("indicatorType: '" + type_text + "' is not one of " +
                           Names({"FileSha1", "FileSha256", "FileMd5", "CertificateThumbprint",
                                  "IpAddress", "DomainName", "Url"}));
  }
  ind.type = *type;

  QUELL_ASSIGN_OR_RETURN(std::string value, StringField(get("indicatorValue"), "indicatorValue",
                                                        kMaxIndicatorValueLength));
  QUELL_ASSIGN_OR_RETURN(ind.value, NormalizeIndicatorValue(ind.type, value));

  QUELL_ASSIGN_OR_RETURN(std::string action_text, StringField(get("action"), "action", 64));
  if (action_text.empty()) return InvalidArgument("action is required");
  std::optional<IndicatorAction> action = ParseIndicatorAction(action_text);
  if (!action) {
    if (action_text == "Alert" || action_text == "AlertAndBlock") {
      return InvalidArgument("action: '" + action_text +
                             "' was retired in January 2022; use Audit (with generateAlert) or "
                             "BlockAndRemediate");
    }
    return InvalidArgument("action: '" + action_text + "' is not one of " +
                           Names({"Allowed", "Audit", "Warn", "Block", "BlockAndRemediate"}));
  }
  ind.action = *action;
  if (!ActionAllowedFor(ind.type, ind.action)) {
    return InvalidArgument("action: " + std::string(IndicatorActionName(ind.action)) +
                           " cannot be used with " + std::string(IndicatorTypeName(ind.type)) +
                           " indicators");
  }

  QUELL_ASSIGN_OR_RETURN(ind.title, StringField(get("title"), "title", kMaxIndicatorTitleLength));
  if (Trim(ind.title).empty()) return InvalidArgument("title is required");
  QUELL_ASSIGN_OR_RETURN(ind.description,
                         StringField(get("description"), "description", kMaxIndicatorTextLength));
  QUELL_ASSIGN_OR_RETURN(ind.recommended_actions,
                         StringField(get("recommendedActions"), "recommendedActions",
                                     kMaxIndicatorTextLength));
  QUELL_ASSIGN_OR_RETURN(ind.application,
                         StringField(get("application"), "application", kMaxIndicatorTitleLength));
  QUELL_ASSIGN_OR_RETURN(std::string severity, StringField(get("severity"), "severity", 64));
  if (!severity.empty()) {
    std::optional<AlertSeverity> parsed = ParseAlertSeverity(severity);
    if (!parsed || *parsed == AlertSeverity::kUnSpecified) {
      return InvalidArgument("severity: '" + severity + "' is not one of " +
                             Names({"Informational", "Low", "Medium", "High"}));
    }
    ind.severity = *parsed;
  }
  QUELL_ASSIGN_OR_RETURN(std::string expiration,
                         StringField(get("expirationTime"), "expirationTime", 64));
  if (!Trim(expiration).empty()) {
    std::optional<UnixMillis> when = ParseIso8601(Trim(expiration));
    if (!when) {
      return InvalidArgument("expirationTime: '" + expiration +
                             "' is not a UTC time like 2026-12-31T23:59:59Z");
    }
    if (*when <= now) return InvalidArgument("expirationTime is in the past");
    ind.expiration_time = *when;
  }
  QUELL_ASSIGN_OR_RETURN(ind.generate_alert, BoolField(get("generateAlert"), "generateAlert"));
  if (ind.action == IndicatorAction::kAudit && !ind.generate_alert) {
    return InvalidArgument("generateAlert must be true when action is Audit");
  }
  QUELL_ASSIGN_OR_RETURN(ind.rbac_group_names, GroupsField(get("rbacGroupNames")));
  return ind;
}

json IndicatorToJson(const Indicator& i) {
  auto optional_text = [](const std::string& s) { return s.empty() ? json() : json(s); };
  return {
      {"id", i.id},
      {"indicatorValue", i.value},
      {"indicatorType", IndicatorTypeName(i.type)},
      {"action", IndicatorActionName(i.action)},
      {"application", optional_text(i.application)},
      {"source", i.created_by},
      {"sourceType", "User"},
      {"createdBy", i.created_by},
      {"createdBySource", "PublicApi"},
      {"lastUpdatedBy", i.last_updated_by},
      {"creationTimeDateTimeUtc", FormatIso8601(i.creation_time)},
      {"lastUpdateTime", FormatIso8601(i.last_update_time)},
      {"expirationTime", i.expiration_time ? json(FormatIso8601(*i.expiration_time)) : json()},
      {"severity", AlertSeverityName(i.severity)},
      {"title", i.title},
      {"description", i.description},
      {"recommendedActions", optional_text(i.recommended_actions)},
      {"rbacGroupNames", i.rbac_group_names},
      {"generateAlert", i.generate_alert},
      {"version", i.version},
  };
}

bool IndicatorApplies(const Indicator& i, std::string_view device_group, UnixMillis now) {
  if (i.expiration_time && *i.expiration_time <= now) return false;
  return i.rbac_group_names.empty() ||
         std::find(i.rbac_group_names.begin(), i.rbac_group_names.end(), device_group) !=
             i.rbac_group_names.end();
}

IndicatorAction AgentAction(IndicatorAction action) {
  return action == IndicatorAction::kWarn ? IndicatorAction::kAudit : action;
}

quell::v1::Indicator ToWireIndicator(const Indicator& i) {
  quell::v1::Indicator wire;
  wire.set_id(i.id);
  wire.set_type(std::string(IndicatorTypeName(i.type)));
  wire.set_value(i.type == IndicatorType::kUrl ? UrlHost(i.value) : i.value);
  wire.set_action(std::string(IndicatorActionName(AgentAction(i.action))));
  wire.set_severity(std::string(AlertSeverityName(i.severity)));
  wire.set_title(i.title);
  wire.set_generate_alert(i.generate_alert);
  wire.set_expiration_unix_ms(i.expiration_time.value_or(0));
  return wire;
}

}  // namespace quell::server
