// SqliteStore: alerts and the detections merged into them.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/store/sqlite/sqlite_store_impl.h"

namespace quell::server::sqlite {
namespace {

// In the order BindAlert/ReadAlert use; ?1 is the id.
constexpr std::string_view kAlertColumns =
    "id, title, description, severity, severity_rank, status, classification, determination, "
    "category, detection_source, detector_id, threat_name, mitre_techniques, machine_id, "
    "computer_dns_name, first_activity, last_activity, created, last_update, resolved, "
    "assigned_to, comments_json, evidence_json, event_count, dedup_key, action_id, incident_id, "
    "version";
constexpr int kAlertColumnCount = 28;

// `version` is bound as given: callers pass the version to store (1 on insert, +1 on update).
void BindAlert(Statement& s, const Alert& a, int64_t version) {
  nlohmann::json comments = nlohmann::json::array();
  for (const AlertComment& c : a.comments) {
    comments.push_back({{"comment", c.comment}, {"createdBy", c.created_by}, {"created", c.created}});
  }
  s.Bind(a.id, a.title, a.description, AlertSeverityName(a.severity),
         static_cast<int64_t>(a.severity), AlertStatusName(a.status), a.classification,
         a.determination, a.category, a.detection_source, a.detector_id, a.threat_name,
         nlohmann::json(a.mitre_techniques).dump(), a.machine_id, a.computer_dns_name,
         a.first_activity, a.last_activity, a.created, a.last_update, a.resolved, a.assigned_to,
         comments.dump(), a.evidence_json, a.event_count, a.dedup_key, a.action_id, a.incident_id,
         version);
}

Result<Alert> ReadAlert(Statement& s) {
  Alert a;
  a.id = s.Text();
  a.title = s.Text();
  a.description = s.Text();
  QUELL_ASSIGN_OR_RETURN(a.severity, ReadEnum(s, ParseAlertSeverity));
  (void)s.Int();  // severity_rank: for ORDER BY only
  QUELL_ASSIGN_OR_RETURN(a.status, ReadEnum(s, ParseAlertStatus));
  a.classification = s.Text();
  a.determination = s.Text();
  a.category = s.Text();
  a.detection_source = s.Text();
  a.detector_id = s.Text();
  a.threat_name = s.Text();
  QUELL_ASSIGN_OR_RETURN(a.mitre_techniques, ReadStringList(s));
  a.machine_id = s.Text();
  a.computer_dns_name = s.Text();
  a.first_activity = s.Int();
  a.last_activity = s.Int();
  a.created = s.Int();
  a.last_update = s.Int();
  a.resolved = s.OptionalInt();
  a.assigned_to = s.Text();
  std::string comments = s.Text();
  try {
    for (const auto& c : nlohmann::json::parse(comments)) {
      a.comments.push_back({.comment = c.at("comment").get<std::string>(),
                            .created_by = c.at("createdBy").get<std::string>(),
                            .created = c.at("created").get<UnixMillis>()});
    }
  } catch (const nlohmann::json::exception& e) {
    return Internal(std::string("stored alert comments are malformed: ") + e.what());
  }
  a.evidence_json = s.Text();
  a.event_count = s.Int();
  a.dedup_key = s.Text();
  a.action_id = s.Text();
  a.incident_id = s.Text();
  a.version = s.Int();
  return a;
}

}  // namespace

Result<Alert> SqliteStore::GetAlert(const std::string& id) {
  std::lock_guard lock(mu_);
  return GetAlertLocked(id);
}

Result<std::vector<Alert>> SqliteStore::ListAlerts(const AlertFilter& filter) {
  std::lock_guard lock(mu_);
  std::optional<std::string_view> status, severity;
  if (filter.status) status = AlertStatusName(*filter.status);
  if (filter.severity) severity = AlertSeverityName(*filter.severity);
  // Constant SQL per order: the column and direction are chosen here, never from input.
  std::string_view column = filter.order_by == AlertOrder::kCreated    ? "created"
                            : filter.order_by == AlertOrder::kSeverity ? "severity_rank"
                                                                       : "last_activity";
  return QueryRows(db_, ReadAlert,
                   Sql("SELECT ", kAlertColumns,
                       " FROM alerts "
                       "WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR severity = ?2) "
                       "AND (?3 IS NULL OR machine_id = ?3) ORDER BY ",
                       column, filter.descending ? " DESC" : " ASC", ", id LIMIT ?4 OFFSET ?5"),
                   status, severity, filter.machine_id, Limit(filter.top), Limit(filter.skip));
}

Status SqliteStore::UpdateAlert(const Alert& alert) {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  QUELL_RETURN_IF_ERROR(UpdateAlertLocked(alert));
  return tx.Commit();
}

Result<std::optional<Alert>> SqliteStore::FindOpenAlert(const std::string& machine_id,
                                                        const std::string& dedup_key,
                                                        UnixMillis active_since) {
  std::lock_guard lock(mu_);
  return QueryOptional(
      db_, ReadAlert,
      Sql("SELECT ", kAlertColumns,
          " FROM alerts WHERE machine_id = ?1 AND dedup_key = ?2 AND status != ?3 "
          "AND last_activity >= ?4 ORDER BY last_activity DESC, id LIMIT 1"),
      machine_id, dedup_key, AlertStatusName(AlertStatus::kResolved), active_since);
}

Status SqliteStore::RecordDetection(const std::string& detection_id, const Alert& alert,
                                    bool create) {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  if (create) {
    QUELL_RETURN_IF_ERROR(GetDeviceLocked(alert.machine_id).status());
    QUELL_ASSIGN_OR_RETURN(Statement stmt,
                           db_.Prepare(InsertSql("alerts", kAlertColumns, kAlertColumnCount)));
    BindAlert(stmt, alert, 1);
    QUELL_RETURN_IF_ERROR(ExistsAs(stmt.Run(), "alert " + alert.id + " already exists"));
  } else {
    QUELL_RETURN_IF_ERROR(UpdateAlertLocked(alert));
  }
  QUELL_RETURN_IF_ERROR(ExistsAs(
      db_.Run("INSERT INTO alert_detections (detection_id, alert_id, machine_id, received) "
              "VALUES (?, ?, ?, ?)",
              detection_id, alert.id, alert.machine_id, alert.last_update),
      "detection " + detection_id + " was recorded before"));
  return tx.Commit();
}

Result<bool> SqliteStore::IsDetectionRecorded(const std::string& detection_id) {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(
      Statement stmt,
      db_.Prepare("SELECT 1 FROM alert_detections WHERE detection_id = ?", detection_id));
  return stmt.Step();
}

Result<Alert> SqliteStore::GetAlertLocked(const std::string& id) {
  return GetByIdLocked("alerts", kAlertColumns, ReadAlert, id, "alert " + id + " not found");
}

Status SqliteStore::UpdateAlertLocked(const Alert& alert) {
  QUELL_ASSIGN_OR_RETURN(
      Statement stmt,
      db_.Prepare(Sql(UpdateSql("alerts", kAlertColumns, kAlertColumnCount), " AND version = ?",
                      std::to_string(kAlertColumnCount + 1))));
  BindAlert(stmt, alert, alert.version + 1);
  stmt.Bind(alert.version);
  QUELL_RETURN_IF_ERROR(stmt.Run());
  if (db_.Changes() == 1) return Status::Ok();
  QUELL_ASSIGN_OR_RETURN(Alert current, GetAlertLocked(alert.id));
  return FailedPrecondition("alert " + alert.id + " changed meanwhile (version " +
                            std::to_string(current.version) + ", not " +
                            std::to_string(alert.version) + ")");
}

}  // namespace quell::server::sqlite
