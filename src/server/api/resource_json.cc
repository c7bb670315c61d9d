#include "server/api/resource_json.h"

namespace quell::server {
namespace {

nlohmann::json TimeOrNull(UnixMillis t) {
  return t > 0 ? nlohmann::json(FormatIso8601(t)) : nlohmann::json(nullptr);
}

nlohmann::json StringOrNull(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

nlohmann::json ParseOrRaw(const std::string& json_text) {
  nlohmann::json parsed = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? nlohmann::json(json_text) : parsed;
}

}  // namespace

nlohmann::json MachineToJson(const Device& d, UnixMillis now, UnixMillis inactive_after_ms) {
  bool active = !d.offboarded && d.last_seen > 0 && now - d.last_seen <= inactive_after_ms;
  nlohmann::json ips = nlohmann::json::array();
  for (const std::string& ip : d.ip_addresses) ips.push_back({{"ipAddress", ip}});
  return {
      {"id", d.id},
      {"computerDnsName", d.computer_dns_name},
      {"firstSeen", TimeOrNull(d.first_seen)},
      {"lastSeen", TimeOrNull(d.last_seen)},
      {"osPlatform", d.os_platform.empty() ? "Linux" : d.os_platform},
      {"osVersion", StringOrNull(d.os_version)},
      {"osProcessor", StringOrNull(d.architecture)},
      {"version", StringOrNull(d.kernel_version)},
      {"lastIpAddress", StringOrNull(d.last_ip_address)},
      {"agentVersion", StringOrNull(d.agent_version)},
      {"healthStatus", active ? "Active" : "Inactive"},
      {"onboardingStatus", d.offboarded ? "Offboarded" : "Onboarded"},
      {"rbacGroupName", StringOrNull(d.rbac_group_name)},
      {"machineTags", nlohmann::json::array()},
      {"ipAddresses", ips},
      // Quell extensions.
      {"osDistribution", StringOrNull(d.os_id)},
      {"isolationState", IsolationStateName(d.isolation)},
  };
}

namespace {

// Defender's relatedFileInfo: the file a StopAndQuarantineFile action is about.
nlohmann::json RelatedFileInfo(const MachineAction& a) {
  if (a.type != "StopAndQuarantineFile") return nullptr;
  auto params = nlohmann::json::parse(a.parameters_json, nullptr, false);
  if (!params.is_object()) return nullptr;
  for (const char* key : {"Sha1", "Sha256"}) {
    if (auto it = params.find(key); it != params.end() && it->is_string()) {
      return {{"fileIdentifier", *it}, {"fileIdentifierType", key}};
    }
  }
  return nullptr;
}

// Defender's commands of a LiveResponse: each command as requested, with the status, times and
// errors the agent reported (Created until it reports).
nlohmann::json Commands(const MachineAction& a) {
  nlohmann::json out = nlohmann::json::array();
  if (a.type != "LiveResponse") return out;
  const auto params = nlohmann::json::parse(a.parameters_json, nullptr, false);
  const auto result = nlohmann::json::parse(a.result_json, nullptr, false);
  if (!params.is_object() || !params.contains("Commands") || !params["Commands"].is_array()) {
    return out;
  }
  const nlohmann::json* reported =
      result.is_object() && result.contains("commands") && result["commands"].is_array()
          ? &result["commands"]
          : nullptr;
  const nlohmann::json& requested = params["Commands"];
  for (size_t i = 0; i < requested.size(); ++i) {
    nlohmann::json entry = {{"index", i},
                            {"startTime", nullptr},
                            {"endTime", nullptr},
                            {"commandStatus", "Created"},
                            {"errors", nlohmann::json::array()},
                            {"command", requested[i]}};
    if (reported != nullptr && i < reported->size() && (*reported)[i].is_object()) {
      const nlohmann::json& r = (*reported)[i];
      for (const char* key : {"startTime", "endTime", "commandStatus", "errors"}) {
        if (r.contains(key)) entry[key] = r[key];
      }
    }
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace

nlohmann::json MachineActionToJson(const MachineAction& a) {
  return {
      {"id", a.id},
      {"type", a.type},
      {"title", a.title},
      {"scope", StringOrNull(a.scope)},
      {"requestor", a.requestor},
      {"requestorComment", a.requestor_comment},
      {"externalID", StringOrNull(a.external_id)},
      {"requestSource", StringOrNull(a.request_source)},
      {"status", ActionStatusName(a.status)},
      {"machineId", a.machine_id},
      {"computerDnsName", a.computer_dns_name},
      {"creationDateTimeUtc", FormatIso8601(a.creation_time)},
      {"lastUpdateDateTimeUtc", FormatIso8601(a.last_update_time)},
      {"cancellationRequestor", StringOrNull(a.cancellation_requestor)},
      {"cancellationComment", StringOrNull(a.cancellation_comment)},
      {"cancellationDateTimeUtc",
       a.cancellation_time ? nlohmann::json(FormatIso8601(*a.cancellation_time))
                           : nlohmann::json(nullptr)},
      {"relatedFileInfo", RelatedFileInfo(a)},
      {"commands", Commands(a)},
      // Quell extensions.
      {"expirationDateTimeUtc", FormatIso8601(a.expiration_time)},
      {"statusMessage", StringOrNull(a.status_message)},
      {"progressPercent", a.progress_percent},
      {"result", ParseOrRaw(a.result_json)},
  };
}

nlohmann::json AuditEntryToJson(const AuditEntry& e) {
  return {{"sequence", e.seq},
          {"time", FormatIso8601(e.time)},
          {"actor", e.actor},
          {"operation", e.operation},
          {"target", e.target},
          {"comment", StringOrNull(e.comment)},
          {"details", ParseOrRaw(e.details_json)}};
}

}  // namespace quell::server
