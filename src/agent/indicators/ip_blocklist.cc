#include "agent/indicators/ip_blocklist.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/logging.h"

namespace quell::agent {
namespace {

auto Log() { return Logger("agent.indicators"); }

struct Parsed {
  IpRange range;
  std::array<uint8_t, 16> addr{};
  int prefix = 0;
};

std::optional<Parsed> ParseCidr(const IpRange& r) {
  const size_t slash = r.cidr.find('/');
  if (slash == std::string::npos) return std::nullopt;
  Parsed p{.range = r};
  const std::string addr = r.cidr.substr(0, slash);
  p.prefix = std::atoi(r.cidr.c_str() + slash + 1);
  if (r.v6) {
    if (inet_pton(AF_INET6, addr.c_str(), p.addr.data()) != 1) return std::nullopt;
  } else {
    if (inet_pton(AF_INET, addr.c_str(), p.addr.data()) != 1) return std::nullopt;
  }
  return p;
}

bool Contains(const Parsed& outer, const Parsed& inner) {
  if (outer.range.v6 != inner.range.v6 || outer.prefix > inner.prefix) return false;
  for (int i = 0; i < 16; ++i) {
    const int bits = std::clamp(outer.prefix - i * 8, 0, 8);
    const uint8_t mask = static_cast<uint8_t>(bits == 0 ? 0 : 0xff << (8 - bits));
    if ((inner.addr[i] & mask) != outer.addr[i]) return false;
  }
  return true;
}

std::string Elements(const std::vector<std::string>& cidrs) {
  std::string s = "{ ";
  for (size_t i = 0; i < cidrs.size(); ++i) {
    if (i > 0) s += ", ";
    s += cidrs[i];
  }
  return s + " }";
}

}  // namespace

std::vector<IpRange> ReduceRanges(std::vector<IpRange> ranges) {
  std::vector<Parsed> parsed;
  parsed.reserve(ranges.size());
  for (const IpRange& r : ranges) {
    if (auto p = ParseCidr(r)) parsed.push_back(std::move(*p));
  }
  std::sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) {
    if (a.range.v6 != b.range.v6) return !a.range.v6;
    if (a.addr != b.addr) return a.addr < b.addr;
    return a.prefix < b.prefix;
  });
  // In address order a containing range comes first and what it contains follows it.
  std::vector<IpRange> out;
  const Parsed* kept = nullptr;
  for (const Parsed& p : parsed) {
    if (kept != nullptr && Contains(*kept, p)) continue;
    out.push_back(p.range);
    kept = &p;
  }
  return out;
}

IpBlocklist::IpBlocklist(NftRunner& nft, DetectionSink* sink, IpBlocklistOptions options)
    : nft_(nft),
      sink_(sink),
      options_(std::move(options)),
      clock_(options_.clock ? *options_.clock : SystemClock::Instance()) {}

std::string IpBlocklist::TableScript(const std::set<IpRange>& ranges) const {
  std::vector<std::string> v4, v6;
  for (const IpRange& r : ranges) (r.v6 ? v6 : v4).push_back(r.cidr);
  const std::string t = "inet " + options_.table;
  auto set = [](const std::string& name, const std::string& type, const std::vector<std::string>& e) {
    std::string s = "  set " + name + " { type " + type + "; flags interval; counter; ";
    if (!e.empty()) s += "elements = " + Elements(e) + "; ";
    return s + "}\n";
  };
  return "add table " + t + "\ndelete table " + t + "\ntable " + t + " {\n" +
         set("v4", "ipv4_addr", v4) + set("v6", "ipv6_addr", v6) +
         "  chain input { type filter hook input priority -5; policy accept; "
         "ip saddr @v4 drop; ip6 saddr @v6 drop; }\n"
         "  chain output { type filter hook output priority -5; policy accept; "
         "ip daddr @v4 drop; ip6 daddr @v6 drop; }\n"
         "  chain forward { type filter hook forward priority -5; policy accept; "
         "ip saddr @v4 drop; ip daddr @v4 drop; ip6 saddr @v6 drop; ip6 daddr @v6 drop; }\n"
         "}\n";
}

Status IpBlocklist::Sync(std::vector<IpRange> ranges) {
  std::vector<IpRange> reduced = ReduceRanges(std::move(ranges));
  std::set<IpRange> want(reduced.begin(), reduced.end());
  std::lock_guard lock(mutex_);
  if (want.empty()) {
    if (synced_ && installed_.empty()) return Status::Ok();
    const std::string t = "table inet " + options_.table;
    QUELL_RETURN_IF_ERROR(nft_.Run("add " + t + "\ndelete " + t + "\n", false).status());
    installed_.clear();
    packets_.clear();
    synced_ = true;
    return Status::Ok();
  }
  if (synced_ && !installed_.empty()) {
    std::vector<std::string> del4, del6, add4, add6;
    for (const IpRange& r : installed_) {
      if (!want.contains(r)) (r.v6 ? del6 : del4).push_back(r.cidr);
    }
    for (const IpRange& r : want) {
      if (!installed_.contains(r)) (r.v6 ? add6 : add4).push_back(r.cidr);
    }
    if (del4.empty() && del6.empty() && add4.empty() && add6.empty()) return Status::Ok();
    const std::string t = "inet " + options_.table;
    std::string script;
    // Deletions first: a new wider range may replace ranges it now contains.
    if (!del4.empty()) script += "delete element " + t + " v4 " + Elements(del4) + "\n";
    if (!del6.empty()) script += "delete element " + t + " v6 " + Elements(del6) + "\n";
    if (!add4.empty()) script += "add element " + t + " v4 " + Elements(add4) + "\n";
    if (!add6.empty()) script += "add element " + t + " v6 " + Elements(add6) + "\n";
    Result<std::string> done = nft_.Run(script, false);
    if (done.ok()) {
      installed_ = std::move(want);
      Log()->info("IP indicators: {} ranges blocked (+{} -{})", installed_.size(),
                  add4.size() + add6.size(), del4.size() + del6.size());
      return Status::Ok();
    }
    Log()->warn("IP indicators: incremental update failed ({}); replacing the table",
                done.status().message());
  }
  synced_ = false;
  QUELL_RETURN_IF_ERROR(nft_.Run(TableScript(want), false).status().WithContext("IP indicators"));
  installed_ = std::move(want);
  packets_.clear();
  synced_ = true;
  Log()->info("IP indicators: table inet {} holds {} ranges", options_.table, installed_.size());
  return Status::Ok();
}

Status IpBlocklist::Clear() {
  std::lock_guard lock(mutex_);
  const std::string t = "table inet " + options_.table;
  QUELL_RETURN_IF_ERROR(nft_.Run("add " + t + "\ndelete " + t + "\n", false).status());
  installed_.clear();
  packets_.clear();
  synced_ = true;
  return Status::Ok();
}

std::set<IpRange> IpBlocklist::Installed() const {
  std::lock_guard lock(mutex_);
  return installed_;
}

Result<size_t> IpBlocklist::PollHits() {
  std::lock_guard lock(mutex_);
  if (installed_.empty()) return size_t{0};
  std::vector<std::pair<std::string, uint64_t>> grown;
  for (const char* set : {"v4", "v6"}) {
    QUELL_ASSIGN_OR_RETURN(
        std::string out, nft_.Run("list set inet " + options_.table + " " + set + "\n", true));
    nlohmann::json doc = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("nftables")) continue;
    for (const auto& item : doc["nftables"]) {
      if (!item.contains("set")) continue;
      for (const auto& e : item["set"].value("elem", nlohmann::json::array())) {
        if (!e.is_object() || !e.contains("elem")) continue;
        const auto& elem = e["elem"];
        const auto& val = elem.value("val", nlohmann::json());
        std::string text;
        if (val.is_string()) text = val.get<std::string>();
        else if (val.is_object() && val.contains("prefix")) {
          text = val["prefix"].value("addr", "") + "/" + std::to_string(val["prefix"].value("len", 0));
        }
        auto range = ParseIpRange(text);
        if (!range.ok()) continue;
        const uint64_t packets = elem.value("counter", nlohmann::json::object()).value("packets", uint64_t{0});
        uint64_t& last = packets_[range->cidr];
        if (packets > last) grown.emplace_back(range->cidr, packets - last);
        last = packets;
      }
    }
  }
  size_t reported = 0;
  const UnixMillis now = clock_.Now();
  for (const auto& [cidr, packets] : grown) {
    std::optional<IndicatorMatch> m;
    if (options_.indicator_for) m = options_.indicator_for(cidr);
    Log()->warn("IP indicators: {} packet(s) to or from {} dropped (indicator {})", packets, cidr,
                m ? m->id : "-");
    if (!m || !m->generate_alert || sink_ == nullptr) continue;
    if (auto it = reported_.find(cidr);
        it != reported_.end() && now - it->second < options_.report_suppression.count()) {
      continue;
    }
    reported_[cidr] = now;
    const std::string addr = cidr.substr(0, cidr.find('/'));
    const std::string name = m->title.empty() ? "indicator " + m->id : m->title;
    Detection d;
    d.detector_id = std::string(kIpIndicatorDetector);
    d.title = "Network traffic blocked by indicator: " + m->value;
    d.description = std::to_string(packets) + " packet(s) to or from " + cidr +
                    " were dropped: the address matches the custom indicator '" + name + "' (id " +
                    m->id + ", action " + std::string(IndicatorActionName(m->action)) + ").";
    d.severity = m->severity.empty() ? "Medium" : m->severity;
    d.category = "CommandAndControl";
    d.detection_source = "CustomTi";
    d.threat_name = name;
    d.mitre_techniques = {"T1071"};
    d.time = now;
    d.evidence = nlohmann::json::array(
        {{{"@odata.type", "#microsoft.graph.security.ipEvidence"},
          {"roles", {"destination"}},
          {"verdict", "malicious"},
          {"remediationStatus", "blocked"},
          {"detectionStatus", "blocked"},
          {"ipAddress", addr},
          {"cidr", cidr}}});
    d.dedup_key = std::string(kIpIndicatorDetector) + ":" + m->id + ":" + cidr;
    sink_->Report(std::move(d));
    ++reported;
  }
  return reported;
}

}  // namespace quell::agent
