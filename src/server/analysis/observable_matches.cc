#include "server/analysis/observable_matches.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

namespace quell::server {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool Blocks(const Indicator& i, UnixMillis now) {
  bool blocking = i.action == IndicatorAction::kBlock ||
                  i.action == IndicatorAction::kBlockAndRemediate;
  return blocking && (!i.expiration_time || *i.expiration_time > now);
}

bool DomainMatches(const std::string& domain, const std::string& blocked) {
  std::string d = Lower(domain);
  std::string b = Lower(blocked);
  if (d.ends_with('.')) d.pop_back();
  if (b.ends_with('.')) b.pop_back();
  return !b.empty() && (d == b || (d.size() > b.size() && d.ends_with("." + b)));
}

std::optional<uint32_t> Ipv4(const std::string& text) {
  in_addr addr{};
  if (::inet_pton(AF_INET, text.c_str(), &addr) != 1) return std::nullopt;
  return ntohl(addr.s_addr);
}

bool IpMatches(const std::string& ip, const std::string& blocked) {
  size_t slash = blocked.find('/');
  if (slash == std::string::npos) return Lower(ip) == Lower(blocked);
  std::optional<uint32_t> address = Ipv4(ip);
  std::optional<uint32_t> network = Ipv4(blocked.substr(0, slash));
  const std::string bits_text = blocked.substr(slash + 1);
  if (!address || !network || bits_text.empty() || bits_text.size() > 2 ||
      !std::all_of(bits_text.begin(), bits_text.end(), ::isdigit)) {
    return false;
  }
  int bits = std::stoi(bits_text);
  if (bits > 32) return false;
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (*address & mask) == (*network & mask);
}

std::vector<std::string> Strings(const nlohmann::json& array) {
  std::vector<std::string> out;
  if (!array.is_array()) return out;
  for (const auto& v : array) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

std::vector<ObservableMatch> MatchBlockedObservables(const nlohmann::json& report,
                                                     const std::vector<Indicator>& indicators,
                                                     UnixMillis now) {
  std::vector<ObservableMatch> matches;
  if (!report.is_object()) return matches;
  const nlohmann::json observables = report.value("observables", nlohmann::json::object());
  if (!observables.is_object()) return matches;

  auto first = [&](IndicatorType type, auto&& matches_value) -> const Indicator* {
    for (const Indicator& i : indicators) {
      if (i.type == type && Blocks(i, now) && matches_value(i.value)) return &i;
    }
    return nullptr;
  };
  std::set<std::string> seen;
  auto add = [&](const std::string& kind, const std::string& value, const Indicator* i) {
    if (i != nullptr && seen.insert(kind + ":" + value).second) {
      matches.push_back({.kind = kind, .value = value, .indicator = i});
    }
  };
  for (const std::string& domain : Strings(observables.value("domains", nlohmann::json()))) {
    add("domain", domain, first(IndicatorType::kDomainName, [&](const std::string& v) {
          return DomainMatches(domain, v);
        }));
  }
  for (const std::string& ip : Strings(observables.value("ips", nlohmann::json()))) {
    add("ip", ip, first(IndicatorType::kIpAddress,
                        [&](const std::string& v) { return IpMatches(ip, v); }));
  }
  const nlohmann::json dropped = observables.value("droppedFiles", nlohmann::json::array());
  if (dropped.is_array()) {
    for (const auto& file : dropped) {
      if (!file.is_object() || !file.contains("sha256") || !file["sha256"].is_string()) continue;
      const std::string sha = Lower(file["sha256"].get<std::string>());
      add("droppedFile", sha, first(IndicatorType::kFileSha256,
                                    [&](const std::string& v) { return Lower(v) == sha; }));
    }
  }
  return matches;
}

nlohmann::json MatchEvidence(const std::vector<ObservableMatch>& matches,
                             const SampleFile& sample) {
  nlohmann::json evidence = nlohmann::json::array();
  evidence.push_back({{"@odata.type", "#microsoft.graph.security.fileEvidence"},
                      {"verdict", "malicious"},
                      {"fileDetails",
                       {{"fileName", sample.file_name},
                        {"sha256", sample.sha256},
                        {"sha1", sample.sha1},
                        {"md5", sample.md5},
                        {"fileSize", sample.size}}}});
  for (const ObservableMatch& m : matches) {
    if (m.kind == "domain") {
      evidence.push_back({{"@odata.type", "#microsoft.graph.security.urlEvidence"},
                          {"url", m.value},
                          {"verdict", "malicious"}});
    } else if (m.kind == "ip") {
      evidence.push_back({{"@odata.type", "#microsoft.graph.security.ipEvidence"},
                          {"ipAddress", m.value},
                          {"verdict", "malicious"}});
    } else {
      evidence.push_back({{"@odata.type", "#microsoft.graph.security.fileEvidence"},
                          {"verdict", "malicious"},
                          {"fileDetails", {{"sha256", m.value}}}});
    }
  }
  return evidence;
}

}  // namespace quell::server
