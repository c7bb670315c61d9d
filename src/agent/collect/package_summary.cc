#include "agent/collect/package_summary.h"

#include <map>

#include "common/files.h"

namespace quell::agent::collect {
namespace {

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace

nlohmann::json SummaryJson(const PackageInfo& info, const PackageStaging& staging) {
  std::map<std::string, nlohmann::json> topics;
  for (const std::string& t : info.topics) {
    topics[t] = {{"name", t}, {"artifacts", nlohmann::json::array()},
                 {"failures", nlohmann::json::array()}};
  }
  auto topic = [&](const std::string& t) -> nlohmann::json& {
    auto [it, inserted] = topics.try_emplace(t);
    if (inserted) {
      it->second = {{"name", t}, {"artifacts", nlohmann::json::array()},
                    {"failures", nlohmann::json::array()}};
    }
    return it->second;
  };
  uint64_t truncated = 0;
  uint64_t secrets = 0;
  for (const StagedArtifact& a : staging.artifacts()) {
    topic(a.topic)["artifacts"].push_back({{"path", a.topic + "/" + a.name},
                                           {"source", a.source},
                                           {"bytes", a.bytes},
                                           {"truncated", a.truncated},
                                           {"secretsRemoved", a.secrets_removed}});
    if (a.truncated) ++truncated;
    secrets += a.secrets_removed;
  }
  for (const CollectFailure& f : staging.failures()) {
    topic(f.topic)["failures"].push_back({{"item", f.what}, {"reason", f.reason}});
  }
  nlohmann::json ordered = nlohmann::json::array();
  for (const std::string& t : info.topics) ordered.push_back(std::move(topics[t]));
  for (auto& [name, t] : topics) {
    if (std::find(info.topics.begin(), info.topics.end(), name) == info.topics.end()) {
      ordered.push_back(std::move(t));
    }
  }
  const std::string incomplete = staging.ExhaustedReason();
  return {
      {"actionId", info.action_id},
      {"computerDnsName", info.computer_name},
      {"collectionStartTime", FormatIso8601(info.started)},
      {"collectionEndTime", FormatIso8601(info.finished)},
      {"complete", incomplete.empty()},
      {"incompleteReason", incomplete.empty() ? nlohmann::json(nullptr) : nlohmann::json(incomplete)},
      {"artifactCount", staging.artifacts().size()},
      {"truncatedCount", truncated},
      {"failureCount", staging.failures().size()},
      {"secretsRemoved", secrets},
      {"totalBytes", staging.total_bytes()},
      {"limits",
       {{"maxArtifactBytes", staging.limits().max_artifact_bytes},
        {"maxTotalBytes", staging.limits().max_total_bytes},
        {"timeLimitSeconds", staging.limits().time_limit.count() / 1000},
        {"commandTimeoutSeconds", staging.limits().command_timeout.count() / 1000}}},
      {"topics", std::move(ordered)},
  };
}

std::string SummaryHtml(const nlohmann::json& s) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>Investigation package: " + Escape(Str(s, "computerDnsName")) + "</title>"
      "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
      "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:90%}"
      ".fail{color:#a00}.warn{color:#a60}</style></head><body>\n";
  h += "<h1>Investigation package: " + Escape(Str(s, "computerDnsName")) + "</h1>\n";
  h += "<p>Action " + Escape(Str(s, "actionId")) + ", collected " +
       Escape(Str(s, "collectionStartTime")) + " to " + Escape(Str(s, "collectionEndTime")) +
       ". " + Escape(Str(s, "artifactCount")) + " artifacts, " + Escape(Str(s, "totalBytes")) +
       " bytes, " + Escape(Str(s, "failureCount")) + " items not collected.</p>\n";
  if (!s.value("complete", true)) {
    h += "<p class=\"warn\"><b>Incomplete:</b> stopped at the " +
         Escape(Str(s, "incompleteReason")) + ".</p>\n";
  }
  h += "<h2>Topics</h2><table><tr><th>Topic</th><th>Artifacts</th><th>Not collected</th></tr>\n";
  for (const auto& t : s["topics"]) {
    h += "<tr><td><a href=\"#" + Escape(Str(t, "name")) + "\">" + Escape(Str(t, "name")) +
         "</a></td><td>" + std::to_string(t["artifacts"].size()) + "</td><td>" +
         std::to_string(t["failures"].size()) + "</td></tr>\n";
  }
  h += "</table>\n";
  for (const auto& t : s["topics"]) {
    h += "<h2 id=\"" + Escape(Str(t, "name")) + "\">" + Escape(Str(t, "name")) + "</h2>\n";
    if (t["artifacts"].empty()) h += "<p>Nothing collected.</p>\n";
    if (!t["artifacts"].empty()) {
      h += "<table><tr><th>File</th><th>From</th><th>Bytes</th><th></th></tr>\n";
      for (const auto& a : t["artifacts"]) {
        h += "<tr><td>" + Escape(Str(a, "path")) + "</td><td>" + Escape(Str(a, "source")) +
             "</td><td>" + Escape(Str(a, "bytes")) + "</td><td class=\"warn\">" +
             (a.value("truncated", false) ? "truncated " : "") +
             (a.value("secretsRemoved", 0) > 0
                  ? Escape(Str(a, "secretsRemoved")) + " secret(s) removed"
                  : "") +
             "</td></tr>\n";
      }
      h += "</table>\n";
    }
    if (!t["failures"].empty()) {
      h += "<table class=\"fail\"><tr><th>Not collected</th><th>Why</th></tr>\n";
      for (const auto& f : t["failures"]) {
        h += "<tr><td>" + Escape(Str(f, "item")) + "</td><td>" + Escape(Str(f, "reason")) +
             "</td></tr>\n";
      }
      h += "</table>\n";
    }
  }
  h += "</body></html>\n";
  return h;
}

Status WriteSummary(const nlohmann::json& summary, const PackageStaging& staging) {
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(staging.dir() + "/" + kSummaryJsonName,
                                        summary.dump(2, ' ', false,
                                                     nlohmann::json::error_handler_t::replace) +
                                            "\n"));
  return WriteFileAtomic(staging.dir() + "/" + kSummaryHtmlName, SummaryHtml(summary));
}

}  // namespace quell::agent::collect
