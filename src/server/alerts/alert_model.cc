#include "server/alerts/alert_model.h"

#include <algorithm>
#include <array>
#include <utility>

namespace quell::server {
namespace {

constexpr std::array<std::string_view, 3> kClassifications = {
    "TruePositive", "InformationalExpectedActivity", "FalsePositive"};

// (determination, the classification it belongs to; "" = each).
constexpr std::array<std::pair<std::string_view, std::string_view>, 12> kDeterminations = {{
    {"MultiStagedAttack", "TruePositive"},
    {"MaliciousUserActivity", "TruePositive"},
    {"CompromisedUser", "TruePositive"},
    {"Malware", "TruePositive"},
    {"Phishing", "TruePositive"},
    {"UnwantedSoftware", "TruePositive"},
    {"SecurityTesting", "InformationalExpectedActivity"},
    {"LineOfBusinessApplication", "InformationalExpectedActivity"},
    {"ConfirmedUserActivity", "InformationalExpectedActivity"},
    {"Clean", "FalsePositive"},
    {"InsufficientData", "FalsePositive"},
    {"Other", ""},
}};

nlohmann::json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

nlohmann::json WithoutCreated(nlohmann::json item) {
  if (item.is_object()) item.erase("createdDateTime");
  return item;
}

}  // namespace

std::optional<std::string> ParseAlertClassification(std::string_view s) {
  for (std::string_view c : kClassifications) {
    if (c == s) return std::string(c);
  }
  return std::nullopt;
}

std::optional<std::string> ParseAlertDetermination(std::string_view s) {
  if (s == "ConfirmedActivity") return "ConfirmedUserActivity";
  if (s == "NotMalicious") return "Clean";
  for (const auto& [d, c] : kDeterminations) {
    if (d == s) return std::string(d);
  }
  return std::nullopt;
}

bool DeterminationFits(std::string_view classification, std::string_view determination) {
  if (classification.empty() || determination.empty()) return true;
  for (const auto& [d, c] : kDeterminations) {
    if (d == determination) return c.empty() || c == classification;
  }
  return false;
}

nlohmann::json AlertToJson(const Alert& a) {
  nlohmann::json comments = nlohmann::json::array();
  for (const AlertComment& c : a.comments) {
    comments.push_back({{"comment", c.comment},
                        {"createdBy", c.created_by},
                        {"createdDateTime", FormatIso8601(c.created)}});
  }
  nlohmann::json evidence = nlohmann::json::parse(a.evidence_json, nullptr, false);
  if (!evidence.is_array()) evidence = nlohmann::json::array();
  return {
      {"id", a.id},
      {"title", a.title},
      {"description", a.description},
      {"severity", AlertSeverityName(a.severity)},
      {"status", AlertStatusName(a.status)},
      {"classification", NullIfEmpty(a.classification)},
      {"determination", NullIfEmpty(a.determination)},
      {"category", a.category},
      {"detectionSource", a.detection_source},
      {"detectorId", a.detector_id},
      {"threatName", NullIfEmpty(a.threat_name)},
      {"mitreTechniques", a.mitre_techniques},
      {"machineId", a.machine_id},
      {"computerDnsName", a.computer_dns_name},
      {"firstActivity", FormatIso8601(a.first_activity)},
      {"lastActivity", FormatIso8601(a.last_activity)},
      {"createdDateTime", FormatIso8601(a.created)},
      {"lastUpdateDateTime", FormatIso8601(a.last_update)},
      {"resolvedDateTime", a.resolved ? nlohmann::json(FormatIso8601(*a.resolved)) : nullptr},
      {"assignedTo", NullIfEmpty(a.assigned_to)},
      {"incidentId", NullIfEmpty(a.incident_id)},
      {"comments", comments},
      {"evidence", evidence},
      {"eventCount", a.event_count},
  };
}

nlohmann::json MergeEvidence(const nlohmann::json& existing, const nlohmann::json& incoming,
                             size_t max_items) {
  nlohmann::json out = existing.is_array() ? existing : nlohmann::json::array();
  if (!incoming.is_array()) return out;
  std::vector<nlohmann::json> seen;
  seen.reserve(out.size());
  for (const auto& item : out) seen.push_back(WithoutCreated(item));
  for (const auto& item : incoming) {
    if (out.size() >= max_items) break;
    nlohmann::json key = WithoutCreated(item);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return out;
}

}  // namespace quell::server
