#include "server/alerts/alert_service.h"

#include <algorithm>

#include "common/ids.h"
#include "common/logging.h"
#include "server/alerts/alert_model.h"

namespace quell::server {
namespace {

constexpr int kMaxAttempts = 8;  // version conflicts are rare: two writers on one alert

auto Log() { return Logger("server.alerts"); }

// The detection's evidence with what the server knows for sure: every item gets a
// createdDateTime; device evidence names the device that reported (not what the agent
// claims); and there is always one device evidence item for it.
nlohmann::json NormalizeEvidence(const std::string& evidence_json, const Device& device,
                                 UnixMillis time) {
  nlohmann::json in = nlohmann::json::parse(evidence_json, nullptr, false);
  nlohmann::json out = nlohmann::json::array();
  bool has_device = false;
  if (in.is_array()) {
    for (auto& item : in) {
      if (!item.is_object()) continue;
      if (!item.contains("createdDateTime")) item["createdDateTime"] = FormatIso8601(time);
      if (item.value("@odata.type", "") == "#microsoft.graph.security.deviceEvidence") {
        item["mdeDeviceId"] = device.id;
        if (item.value("deviceDnsName", "").empty()) item["deviceDnsName"] = device.computer_dns_name;
        has_device = true;
      }
      out.push_back(std::move(item));
    }
  }
  if (!has_device) {
    out.push_back({{"@odata.type", "#microsoft.graph.security.deviceEvidence"},
                   {"createdDateTime", FormatIso8601(time)},
                   {"mdeDeviceId", device.id},
                   {"deviceDnsName", device.computer_dns_name},
                   {"osPlatform", device.os_platform},
                   {"roles", nlohmann::json::array()},
                   {"verdict", "unknown"},
                   {"remediationStatus", "none"}});
  }
  return out;
}

Alert NewAlert(const Device& device, const quell::v1::Detection& d, UnixMillis time,
               UnixMillis now, nlohmann::json evidence) {
  Alert a;
  a.id = NewUuid();
  a.title = d.title().empty() ? d.detector_id() : d.title();
  a.description = d.description();
  a.severity = ParseAlertSeverity(d.severity()).value_or(AlertSeverity::kUnSpecified);
  a.status = AlertStatus::kNew;
  a.category = d.category();
  a.detection_source = d.detection_source();
  a.detector_id = d.detector_id();
  a.threat_name = d.threat_name();
  a.mitre_techniques.assign(d.mitre_techniques().begin(), d.mitre_techniques().end());
  a.machine_id = device.id;
  a.computer_dns_name = device.computer_dns_name;
  a.first_activity = time;
  a.last_activity = time;
  a.created = now;
  a.last_update = now;
  a.evidence_json = evidence.dump();
  a.event_count = 1;
  a.dedup_key = d.dedup_key();
  a.action_id = d.action_id();
  return a;
}

}  // namespace

AlertService::AlertService(Store& store, const Clock& clock, AlertServiceOptions options)
    : store_(store), clock_(clock), options_(options) {}

Result<AlertService::Ingested> AlertService::Ingest(const std::string& device_id,
                                                    const quell::v1::Detection& d) {
  if (d.detection_id().empty()) return InvalidArgument("detection without a detection_id");
  QUELL_ASSIGN_OR_RETURN(bool seen, store_.IsDetectionRecorded(d.detection_id()));
  if (seen) return Ingested{.outcome = Outcome::kDuplicate};
  QUELL_ASSIGN_OR_RETURN(Device device, store_.GetDevice(device_id));

  const UnixMillis now = clock_.Now();
  const UnixMillis time = d.time_unix_ms() > 0 ? d.time_unix_ms() : now;
  nlohmann::json evidence = NormalizeEvidence(d.evidence_json(), device, time);

  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    std::optional<Alert> open;
    if (!d.dedup_key().empty()) {
      QUELL_ASSIGN_OR_RETURN(open, store_.FindOpenAlert(device_id, d.dedup_key(),
                                                        time - options_.dedup_window_ms));
    }
    Alert alert;
    const bool create = !open.has_value();
    if (create) {
      alert = NewAlert(device, d, time, now, evidence);
    } else {
      alert = std::move(*open);
      alert.first_activity = std::min(alert.first_activity, time);
      alert.last_activity = std::max(alert.last_activity, time);
      alert.last_update = now;
      alert.event_count += 1;
      if (auto sev = ParseAlertSeverity(d.severity()); sev && *sev > alert.severity) {
        alert.severity = *sev;
      }
      nlohmann::json existing = nlohmann::json::parse(alert.evidence_json, nullptr, false);
      alert.evidence_json = MergeEvidence(existing, evidence).dump();
    }
    Status recorded = store_.RecordDetection(d.detection_id(), alert, create);
    if (recorded.code() == StatusCode::kAlreadyExists && !create) {
      return Ingested{.outcome = Outcome::kDuplicate};
    }
    if (recorded.code() == StatusCode::kAlreadyExists) {
      // Either the detection id (a concurrent resend) or, vanishingly, the new alert id.
      QUELL_ASSIGN_OR_RETURN(bool now_seen, store_.IsDetectionRecorded(d.detection_id()));
      if (now_seen) return Ingested{.outcome = Outcome::kDuplicate};
      continue;
    }
    if (recorded.code() == StatusCode::kFailedPrecondition) continue;  // lost a version race
    QUELL_RETURN_IF_ERROR(recorded);

    const char* operation = create ? "alert.created" : "alert.updated";
    Status audited = store_.AppendAudit(
        {.time = now,
         .actor = "agent:" + device_id,
         .operation = operation,
         .target = alert.id,
         .comment = alert.title,
         .details_json = nlohmann::json{{"detectionId", d.detection_id()},
                                        {"detectorId", d.detector_id()},
                                        {"machineId", device_id},
                                        {"eventCount", alert.event_count}}
                             .dump()});
    if (!audited.ok()) {
      Log()->error("alert={} {} but not audited: {}", alert.id, operation, audited.ToString());
    }
    Log()->info("device={} detection={} {} alert={} ({}, {} event(s))", device_id,
                d.detection_id(), create ? "created" : "updated", alert.id,
                AlertSeverityName(alert.severity), alert.event_count);
    return Ingested{.outcome = create ? Outcome::kCreated : Outcome::kUpdated,
                    .alert_id = alert.id};
  }
  return Unavailable("alert for detection " + d.detection_id() +
                 " kept changing underneath; will be retried");
}

Result<Alert> AlertService::Update(const std::string& alert_id, const AlertChanges& changes,
                                   const std::string& actor) {
  if (changes.classification && !changes.classification->empty() &&
      !ParseAlertClassification(*changes.classification)) {
    return InvalidArgument("unknown classification '" + *changes.classification + "'");
  }
  std::optional<std::string> determination = changes.determination;
  if (determination && !determination->empty()) {
    auto canonical = ParseAlertDetermination(*determination);
    if (!canonical) return InvalidArgument("unknown determination '" + *determination + "'");
    determination = *canonical;
  }
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    QUELL_ASSIGN_OR_RETURN(Alert alert, store_.GetAlert(alert_id));
    const Alert before = alert;
    const UnixMillis now = clock_.Now();
    if (changes.status && *changes.status != alert.status) {
      alert.status = *changes.status;
      if (alert.status == AlertStatus::kResolved) {
        alert.resolved = now;
      } else {
        alert.resolved.reset();
      }
    }
    if (changes.assigned_to) alert.assigned_to = *changes.assigned_to;
    if (changes.classification) alert.classification = *changes.classification;
    if (determination) alert.determination = *determination;
    if (!DeterminationFits(alert.classification, alert.determination)) {
      return InvalidArgument("determination '" + alert.determination +
                             "' does not belong to classification '" + alert.classification +
                             "'");
    }
    if (changes.comment && !changes.comment->empty()) {
      alert.comments.push_back({.comment = *changes.comment, .created_by = actor, .created = now});
    }
    alert.last_update = now;
    Status updated = store_.UpdateAlert(alert);
    if (updated.code() == StatusCode::kFailedPrecondition) continue;
    QUELL_RETURN_IF_ERROR(updated);
    ++alert.version;

    nlohmann::json details = nlohmann::json::object();
    if (before.status != alert.status) details["status"] = AlertStatusName(alert.status);
    if (before.assigned_to != alert.assigned_to) details["assignedTo"] = alert.assigned_to;
    if (before.classification != alert.classification) {
      details["classification"] = alert.classification;
    }
    if (before.determination != alert.determination) {
      details["determination"] = alert.determination;
    }
    if (Status s = store_.AppendAudit({.time = now,
                                       .actor = actor,
                                       .operation = "alert.updated",
                                       .target = alert.id,
                                       .comment = changes.comment.value_or(""),
                                       .details_json = details.dump()});
        !s.ok()) {
      Log()->error("alert={} updated by {} but not audited: {}", alert.id, actor, s.ToString());
    }
    return alert;
  }
  return Unavailable("alert " + alert_id + " kept changing underneath; try again");
}

}  // namespace quell::server
