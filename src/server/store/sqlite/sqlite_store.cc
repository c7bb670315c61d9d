#include "server/store/sqlite/sqlite_store.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "server/store/sqlite/db.h"
#include "server/store/sqlite/migrations.h"

namespace quell::server {
namespace {

using sqlite::Db;
using sqlite::Placeholders;
using sqlite::Statement;
using sqlite::Transaction;

// Column lists, in the order the Bind*/Read* functions below use. INSERT and UPDATE share one
// list of numbered placeholders; ?1 is always the id.
constexpr std::string_view kDeviceColumns =
    "id, computer_dns_name, os_platform, os_version, os_id, kernel_version, architecture, "
    "agent_version, ip_addresses, last_ip_address, rbac_group_name, first_seen, last_seen, "
    "cert_serial_hex, offboarded, isolation";
constexpr int kDeviceColumnCount = 16;

constexpr std::string_view kApiTokenColumns = "id, name, role, secret_sha256, created, revoked";
constexpr int kApiTokenColumnCount = 6;

constexpr std::string_view kEnrollmentTokenColumns =
    "id, secret_sha256, uses_left, expires, created";
constexpr int kEnrollmentTokenColumnCount = 5;

constexpr std::string_view kActionColumns =
    "id, type, scope, requestor, requestor_comment, external_id, request_source, title, status, "
    "machine_id, computer_dns_name, creation_time, last_update_time, expiration_time, "
    "cancellation_time, cancellation_requestor, cancellation_comment, parameters_json, "
    "result_json, status_message, progress_percent";
constexpr int kActionColumnCount = 21;

constexpr std::string_view kAlertColumns =
    "id, title, description, severity, severity_rank, status, classification, determination, "
    "category, detection_source, detector_id, threat_name, mitre_techniques, machine_id, "
    "computer_dns_name, first_activity, last_activity, created, last_update, resolved, "
    "assigned_to, comments_json, evidence_json, event_count, dedup_key, action_id, incident_id, "
    "version";
constexpr int kAlertColumnCount = 28;

constexpr std::string_view kAuditColumns =
    "seq, time, actor, operation, target, comment, details_json";

// Concatenates constant SQL fragments. Never used with values.
template <typename... Parts>
std::string Sql(const Parts&... parts) {
  std::string sql;
  (sql.append(parts), ...);
  return sql;
}

// "INSERT INTO <table> (<columns>) VALUES (?1, ..., ?<count>)".
std::string InsertSql(std::string_view table, std::string_view columns, int count) {
  return Sql("INSERT INTO ", table, " (", columns, ") VALUES (", Placeholders(count), ")");
}

// "UPDATE <table> SET (<columns>) = (?1, ..., ?<count>) WHERE id = ?1": the INSERT bindings
// serve, since ?1 is always the id.
std::string UpdateSql(std::string_view table, std::string_view columns, int count) {
  return Sql("UPDATE ", table, " SET (", columns, ") = (", Placeholders(count), ") WHERE id = ?1");
}

int64_t Limit(size_t n) {
  return static_cast<int64_t>(std::min<size_t>(n, std::numeric_limits<int64_t>::max()));
}

template <typename E>
Result<E> ReadEnum(Statement& stmt, std::optional<E> (*parse)(std::string_view)) {
  std::string text = stmt.Text();
  if (std::optional<E> value = parse(text)) return *value;
  return Internal("stored enum value '" + text + "' is unknown");
}

Result<std::vector<std::string>> ReadStringList(Statement& stmt) {
  std::string text = stmt.Text();
  try {
    return nlohmann::json::parse(text).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return Internal(std::string("stored string list is malformed: ") + e.what());
  }
}

// ---- row <-> struct ----

void BindDevice(Statement& s, const Device& d) {
  s.Bind(d.id, d.computer_dns_name, d.os_platform, d.os_version, d.os_id, d.kernel_version,
         d.architecture, d.agent_version, nlohmann::json(d.ip_addresses).dump(), d.last_ip_address,
         d.rbac_group_name, d.first_seen, d.last_seen, d.cert_serial_hex, d.offboarded,
         IsolationStateName(d.isolation));
}

Result<Device> ReadDevice(Statement& s) {
  Device d;
  d.id = s.Text();
  d.computer_dns_name = s.Text();
  d.os_platform = s.Text();
  d.os_version = s.Text();
  d.os_id = s.Text();
  d.kernel_version = s.Text();
  d.architecture = s.Text();
  d.agent_version = s.Text();
  QUELL_ASSIGN_OR_RETURN(d.ip_addresses, ReadStringList(s));
  d.last_ip_address = s.Text();
  d.rbac_group_name = s.Text();
  d.first_seen = s.Int();
  d.last_seen = s.Int();
  d.cert_serial_hex = s.Text();
  d.offboarded = s.Bool();
  QUELL_ASSIGN_OR_RETURN(d.isolation, ReadEnum(s, ParseIsolationState));
  return d;
}

Result<ApiToken> ReadApiToken(Statement& s) {
  ApiToken t;
  t.id = s.Text();
  t.name = s.Text();
  QUELL_ASSIGN_OR_RETURN(t.role, ReadEnum(s, ParseRole));
  t.secret_sha256 = s.Text();
  t.created = s.Int();
  t.revoked = s.Bool();
  return t;
}

void BindAction(Statement& s, const MachineAction& a) {
  s.Bind(a.id, a.type, a.scope, a.requestor, a.requestor_comment, a.external_id, a.request_source,
         a.title, ActionStatusName(a.status), a.machine_id, a.computer_dns_name, a.creation_time,
         a.last_update_time, a.expiration_time, a.cancellation_time, a.cancellation_requestor,
         a.cancellation_comment, a.parameters_json, a.result_json, a.status_message,
         a.progress_percent);
}

Result<MachineAction> ReadAction(Statement& s) {
  MachineAction a;
  a.id = s.Text();
  a.type = s.Text();
  a.scope = s.Text();
  a.requestor = s.Text();
  a.requestor_comment = s.Text();
  a.external_id = s.Text();
  a.request_source = s.Text();
  a.title = s.Text();
  QUELL_ASSIGN_OR_RETURN(a.status, ReadEnum(s, ParseActionStatus));
  a.machine_id = s.Text();
  a.computer_dns_name = s.Text();
  a.creation_time = s.Int();
  a.last_update_time = s.Int();
  a.expiration_time = s.Int();
  a.cancellation_time = s.OptionalInt();
  a.cancellation_requestor = s.Text();
  a.cancellation_comment = s.Text();
  a.parameters_json = s.Text();
  a.result_json = s.Text();
  a.status_message = s.Text();
  a.progress_percent = static_cast<uint32_t>(s.Int());
  return a;
}

Result<AuditEntry> ReadAudit(Statement& s) {
  AuditEntry e;
  e.seq = s.Int();
  e.time = s.Int();
  e.actor = s.Text();
  e.operation = s.Text();
  e.target = s.Text();
  e.comment = s.Text();
  e.details_json = s.Text();
  return e;
}

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

constexpr std::string_view kIndicatorColumns =
    "id, type, value, action, severity, title, description, recommended_actions, application, "
    "expiration_time, generate_alert, rbac_group_names, created_by, last_updated_by, "
    "creation_time, last_update_time, version";
constexpr int kIndicatorColumnCount = 17;

void BindIndicator(Statement& s, const Indicator& i) {
  s.Bind(i.id, IndicatorTypeName(i.type), i.value, IndicatorActionName(i.action),
         AlertSeverityName(i.severity), i.title, i.description, i.recommended_actions,
         i.application, i.expiration_time, i.generate_alert,
         nlohmann::json(i.rbac_group_names).dump(), i.created_by, i.last_updated_by,
         i.creation_time, i.last_update_time, i.version);
}

Result<Indicator> ReadIndicator(Statement& s) {
  Indicator i;
  i.id = s.Text();
  QUELL_ASSIGN_OR_RETURN(i.type, ReadEnum(s, ParseIndicatorType));
  i.value = s.Text();
  QUELL_ASSIGN_OR_RETURN(i.action, ReadEnum(s, ParseIndicatorAction));
  QUELL_ASSIGN_OR_RETURN(i.severity, ReadEnum(s, ParseAlertSeverity));
  i.title = s.Text();
  i.description = s.Text();
  i.recommended_actions = s.Text();
  i.application = s.Text();
  i.expiration_time = s.OptionalInt();
  i.generate_alert = s.Bool();
  QUELL_ASSIGN_OR_RETURN(i.rbac_group_names, ReadStringList(s));
  i.created_by = s.Text();
  i.last_updated_by = s.Text();
  i.creation_time = s.Int();
  i.last_update_time = s.Int();
  i.version = s.Int();
  return i;
}

template <typename T>
Result<std::vector<T>> ReadAll(Statement& stmt, Result<T> (*read)(Statement&)) {
  std::vector<T> rows;
  while (true) {
    QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return rows;
    QUELL_ASSIGN_OR_RETURN(T value, read(stmt));
    rows.push_back(std::move(value));
  }
}

template <typename T>
Result<T> ReadOne(Statement& stmt, Result<T> (*read)(Statement&), std::string not_found) {
  QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return NotFound(std::move(not_found));
  return read(stmt);
}

// Replaces the message of AlreadyExists, which SQLite phrases in terms of tables.
Status ExistsAs(Status status, std::string message) {
  return status.code() == StatusCode::kAlreadyExists ? AlreadyExists(std::move(message)) : status;
}

// Every method locks mu_ for its whole run: one connection, used by one thread at a time.
// Methods ending in Locked expect mu_ to be held already.
class SqliteStore final : public Store {
 public:
  explicit SqliteStore(Db db) : db_(std::move(db)) {}

  Status CreateDevice(const Device& device) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Statement stmt,
                           db_.Prepare(InsertSql("devices", kDeviceColumns, kDeviceColumnCount)));
    BindDevice(stmt, device);
    return ExistsAs(stmt.Run(), "device " + device.id + " already exists");
  }

  Result<Device> GetDevice(const std::string& id) override {
    std::lock_guard lock(mu_);
    return GetDeviceLocked(id);
  }

  Result<std::vector<Device>> ListDevices() override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt, db_.Prepare(Sql("SELECT ", kDeviceColumns, " FROM devices ORDER BY id")));
    return ReadAll(stmt, ReadDevice);
  }

  Status UpdateDevice(const Device& device) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Statement stmt,
                           db_.Prepare(UpdateSql("devices", kDeviceColumns, kDeviceColumnCount)));
    BindDevice(stmt, device);
    QUELL_RETURN_IF_ERROR(stmt.Run());
    return db_.Changes() == 1 ? Status::Ok() : NotFound("device " + device.id + " not found");
  }

  Status TouchDevice(const std::string& id, UnixMillis last_seen) override {
    std::lock_guard lock(mu_);
    QUELL_RETURN_IF_ERROR(
        db_.Run("UPDATE devices SET last_seen = MAX(last_seen, ?2) WHERE id = ?1", id, last_seen));
    return db_.Changes() == 1 ? Status::Ok() : NotFound("device " + id + " not found");
  }

  Status TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    for (const auto& [id, last_seen] : seen) {
      QUELL_RETURN_IF_ERROR(db_.Run(
          "UPDATE devices SET last_seen = MAX(last_seen, ?2) WHERE id = ?1", id, last_seen));
    }
    return tx.Commit();
  }

  Status CreateApiToken(const ApiToken& t) override {
    std::lock_guard lock(mu_);
    Status status = db_.Run(InsertSql("api_tokens", kApiTokenColumns, kApiTokenColumnCount), t.id,
                            t.name, RoleName(t.role), t.secret_sha256, t.created, t.revoked);
    return ExistsAs(status, "api token " + t.id + " or its secret already exists");
  }

  Result<ApiToken> FindApiTokenBySecretHash(const std::string& secret_sha256) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare(Sql("SELECT ", kApiTokenColumns, " FROM api_tokens WHERE secret_sha256 = ?"),
                    secret_sha256));
    return ReadOne(stmt, ReadApiToken, "no api token has this secret");
  }

  Status RevokeApiToken(const std::string& id) override {
    std::lock_guard lock(mu_);
    QUELL_RETURN_IF_ERROR(db_.Run("UPDATE api_tokens SET revoked = 1 WHERE id = ?", id));
    return db_.Changes() == 1 ? Status::Ok() : NotFound("api token " + id + " not found");
  }

  Status CreateEnrollmentToken(const EnrollmentToken& t) override {
    std::lock_guard lock(mu_);
    Status status = db_.Run(
        InsertSql("enrollment_tokens", kEnrollmentTokenColumns, kEnrollmentTokenColumnCount),
        t.id, t.secret_sha256, t.uses_left, t.expires, t.created);
    return ExistsAs(status, "enrollment token " + t.id + " or its secret already exists");
  }

  Status ConsumeEnrollmentToken(const std::string& secret_sha256, UnixMillis now) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    QUELL_RETURN_IF_ERROR(
        db_.Run("UPDATE enrollment_tokens SET uses_left = uses_left - 1 "
                "WHERE secret_sha256 = ?1 AND uses_left > 0 AND expires > ?2",
                secret_sha256, now));
    if (db_.Changes() == 1) return tx.Commit();
    // Nothing was consumed; find out why for the caller.
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare("SELECT uses_left FROM enrollment_tokens WHERE secret_sha256 = ?",
                    secret_sha256));
    QUELL_ASSIGN_OR_RETURN(bool found, stmt.Step());
    if (!found) return NotFound("no enrollment token has this secret");
    return PermissionDenied(stmt.Int() > 0 ? "enrollment token has expired"
                                           : "enrollment token is used up");
  }

  Status InsertAction(const MachineAction& action, const AuditEntry* audit) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    QUELL_RETURN_IF_ERROR(GetDeviceLocked(action.machine_id).status());
    QUELL_ASSIGN_OR_RETURN(Statement stmt,
                           db_.Prepare(InsertSql("actions", kActionColumns, kActionColumnCount)));
    BindAction(stmt, action);
    QUELL_RETURN_IF_ERROR(ExistsAs(stmt.Run(), "action " + action.id + " already exists"));
    if (audit != nullptr) QUELL_RETURN_IF_ERROR(AppendAuditLocked(*audit));
    return tx.Commit();
  }

  Result<MachineAction> GetAction(const std::string& id) override {
    std::lock_guard lock(mu_);
    return GetActionLocked(id);
  }

  Result<std::vector<MachineAction>> ListActions(const ActionFilter& filter) override {
    std::lock_guard lock(mu_);
    std::optional<std::string_view> status;
    if (filter.status) status = ActionStatusName(*filter.status);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare(Sql("SELECT ", kActionColumns,
                        " FROM actions "
                        "WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR machine_id = ?2) "
                        "AND (?3 IS NULL OR type = ?3) "
                        "ORDER BY creation_time DESC, id LIMIT ?4 OFFSET ?5"),
                    status, filter.machine_id, filter.type, Limit(filter.top), Limit(filter.skip)));
    return ReadAll(stmt, ReadAction);
  }

  Status UpdateAction(const MachineAction& action, ActionStatus expected,
                      const AuditEntry* audit) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare(Sql(UpdateSql("actions", kActionColumns, kActionColumnCount),
                        " AND status = ?", std::to_string(kActionColumnCount + 1))));
    BindAction(stmt, action);
    stmt.Bind(ActionStatusName(expected));
    QUELL_RETURN_IF_ERROR(stmt.Run());
    if (db_.Changes() == 0) {
      QUELL_ASSIGN_OR_RETURN(MachineAction current, GetActionLocked(action.id));
      return FailedPrecondition(Sql("action ", action.id, " is ", ActionStatusName(current.status),
                                    ", not ", ActionStatusName(expected)));
    }
    if (audit != nullptr) QUELL_RETURN_IF_ERROR(AppendAuditLocked(*audit));
    return tx.Commit();
  }

  Result<std::vector<MachineAction>> ListOpenActions(const std::string& machine_id) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare(Sql("SELECT ", kActionColumns,
                        " FROM actions "
                        "WHERE machine_id = ?1 AND status IN (?2, ?3) ORDER BY creation_time, id"),
                    machine_id, ActionStatusName(ActionStatus::kPending),
                    ActionStatusName(ActionStatus::kInProgress)));
    return ReadAll(stmt, ReadAction);
  }

  Result<std::vector<MachineAction>> ListExpiredActions(UnixMillis now) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt, db_.Prepare(Sql("SELECT ", kActionColumns,
                                        " FROM actions WHERE status IN (?1, ?2) "
                                        "AND expiration_time <= ?3 ORDER BY expiration_time, id"),
                                    ActionStatusName(ActionStatus::kPending),
                                    ActionStatusName(ActionStatus::kInProgress), now));
    return ReadAll(stmt, ReadAction);
  }

  Result<std::map<ActionStatus, int64_t>> CountActionsByStatus() override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Statement stmt,
                           db_.Prepare("SELECT status, COUNT(*) FROM actions GROUP BY status"));
    std::map<ActionStatus, int64_t> counts;
    while (true) {
      QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      std::string name = stmt.Text();
      int64_t n = stmt.Int();
      if (auto status = ParseActionStatus(name)) counts[*status] = n;
    }
    return counts;
  }

  Status AppendAudit(const AuditEntry& e) override {
    std::lock_guard lock(mu_);
    return AppendAuditLocked(e);
  }

  Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Statement stmt,
                           db_.Prepare(Sql("SELECT ", kAuditColumns,
                                           " FROM audit WHERE (?1 IS NULL OR target = ?1) "
                                           "ORDER BY seq LIMIT ?2 OFFSET ?3"),
                                       filter.target, Limit(filter.top), Limit(filter.skip)));
    return ReadAll(stmt, ReadAudit);
  }

  Result<Alert> GetAlert(const std::string& id) override {
    std::lock_guard lock(mu_);
    return GetAlertLocked(id);
  }

  Result<std::vector<Alert>> ListAlerts(const AlertFilter& filter) override {
    std::lock_guard lock(mu_);
    std::optional<std::string_view> status, severity;
    if (filter.status) status = AlertStatusName(*filter.status);
    if (filter.severity) severity = AlertSeverityName(*filter.severity);
    // Constant SQL per order: the column and direction are chosen here, never from input.
    std::string_view column = filter.order_by == AlertOrder::kCreated    ? "created"
                              : filter.order_by == AlertOrder::kSeverity ? "severity_rank"
                                                                         : "last_activity";
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare(Sql("SELECT ", kAlertColumns,
                        " FROM alerts "
                        "WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR severity = ?2) "
                        "AND (?3 IS NULL OR machine_id = ?3) ORDER BY ",
                        column, filter.descending ? " DESC" : " ASC",
                        ", id LIMIT ?4 OFFSET ?5"),
                    status, severity, filter.machine_id, Limit(filter.top), Limit(filter.skip)));
    return ReadAll(stmt, ReadAlert);
  }

  Status UpdateAlert(const Alert& alert) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    QUELL_RETURN_IF_ERROR(UpdateAlertLocked(alert));
    return tx.Commit();
  }

  Result<std::optional<Alert>> FindOpenAlert(const std::string& machine_id,
                                             const std::string& dedup_key,
                                             UnixMillis active_since) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare(Sql("SELECT ", kAlertColumns,
                        " FROM alerts WHERE machine_id = ?1 AND dedup_key = ?2 AND status != ?3 "
                        "AND last_activity >= ?4 ORDER BY last_activity DESC, id LIMIT 1"),
                    machine_id, dedup_key, AlertStatusName(AlertStatus::kResolved),
                    active_since));
    QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<Alert>();
    QUELL_ASSIGN_OR_RETURN(Alert alert, ReadAlert(stmt));
    return std::optional<Alert>(std::move(alert));
  }

  Status RecordDetection(const std::string& detection_id, const Alert& alert,
                         bool create) override {
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

  Result<bool> IsDetectionRecorded(const std::string& detection_id) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare("SELECT 1 FROM alert_detections WHERE detection_id = ?", detection_id));
    return stmt.Step();
  }

  Status RecordFileSightings(const std::vector<FileSighting>& sightings) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    for (const FileSighting& f : sightings) {
      QUELL_RETURN_IF_ERROR(db_.Run(
          "INSERT INTO file_sightings (device_id, sha256, sha1, md5, path, source, first_seen, "
          "last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
          "ON CONFLICT (device_id, sha256, path) DO UPDATE SET sha1 = ?3, md5 = ?4, "
          "source = ?6, last_seen = MAX(last_seen, ?8)",
          f.device_id, f.sha256, f.sha1, f.md5, f.path, f.source, f.first_seen, f.last_seen));
    }
    return tx.Commit();
  }

  Result<std::vector<FileSighting>> ListFileSightings(const std::string& hash,
                                                      size_t top) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare("SELECT device_id, sha256, sha1, md5, path, source, first_seen, last_seen "
                    "FROM file_sightings WHERE sha256 = ?1 OR sha1 = ?1 OR md5 = ?1 "
                    "ORDER BY last_seen DESC, device_id, path LIMIT ?2",
                    hash, Limit(top)));
    std::vector<FileSighting> out;
    while (true) {
      QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      FileSighting f;
      f.device_id = stmt.Text();
      f.sha256 = stmt.Text();
      f.sha1 = stmt.Text();
      f.md5 = stmt.Text();
      f.path = stmt.Text();
      f.source = stmt.Text();
      f.first_seen = stmt.Int();
      f.last_seen = stmt.Int();
      out.push_back(std::move(f));
    }
  }

  Result<std::vector<Indicator>> PutIndicators(const std::vector<Indicator>& indicators,
                                               const AuditEntry& audit) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    QUELL_ASSIGN_OR_RETURN(int64_t version, IndicatorVersionLocked());
    std::vector<Indicator> stored;
    stored.reserve(indicators.size());
    std::set<std::pair<IndicatorType, std::string>> seen;
    for (const Indicator& given : indicators) {
      if (!seen.emplace(given.type, given.value).second) {
        return InvalidArgument("indicator " + std::string(IndicatorTypeName(given.type)) + " '" +
                               given.value + "' appears twice in one request");
      }
      Indicator row = given;
      row.version = ++version;
      QUELL_ASSIGN_OR_RETURN(
          Statement find,
          db_.Prepare(Sql("SELECT ", kIndicatorColumns,
                          " FROM indicators WHERE type = ?1 AND value = ?2"),
                      IndicatorTypeName(given.type), given.value));
      QUELL_ASSIGN_OR_RETURN(bool exists, find.Step());
      if (exists) {
        QUELL_ASSIGN_OR_RETURN(Indicator current, ReadIndicator(find));
        row.id = current.id;
        row.creation_time = current.creation_time;
        row.created_by = current.created_by;
        QUELL_ASSIGN_OR_RETURN(
            Statement update,
            db_.Prepare(UpdateSql("indicators", kIndicatorColumns, kIndicatorColumnCount)));
        BindIndicator(update, row);
        QUELL_RETURN_IF_ERROR(update.Run());
      } else {
        QUELL_ASSIGN_OR_RETURN(
            Statement insert,
            db_.Prepare(InsertSql("indicators", kIndicatorColumns, kIndicatorColumnCount)));
        BindIndicator(insert, row);
        QUELL_RETURN_IF_ERROR(ExistsAs(insert.Run(), "indicator " + row.id + " already exists"));
      }
      AuditEntry entry = audit;
      entry.target = row.id;
      QUELL_RETURN_IF_ERROR(AppendAuditLocked(entry));
      stored.push_back(std::move(row));
    }
    QUELL_RETURN_IF_ERROR(db_.Run("UPDATE indicator_state SET version = ?", version));
    QUELL_RETURN_IF_ERROR(tx.Commit());
    return stored;
  }

  Result<Indicator> GetIndicator(const std::string& id) override {
    std::lock_guard lock(mu_);
    return GetByIdLocked("indicators", kIndicatorColumns, ReadIndicator, id,
                         "indicator " + id + " not found");
  }

  Result<std::vector<Indicator>> ListIndicators(const IndicatorFilter& filter) override {
    std::lock_guard lock(mu_);
    std::optional<std::string_view> type, action;
    if (filter.type) type = IndicatorTypeName(*filter.type);
    if (filter.action) action = IndicatorActionName(*filter.action);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare(Sql("SELECT ", kIndicatorColumns,
                        " FROM indicators WHERE (?1 IS NULL OR type = ?1) "
                        "AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR value = ?3) "
                        "ORDER BY id LIMIT ?4 OFFSET ?5"),
                    type, action, filter.value, Limit(filter.top), Limit(filter.skip)));
    return ReadAll(stmt, ReadIndicator);
  }

  Result<std::vector<std::string>> DeleteIndicators(const std::vector<std::string>& ids,
                                                    const AuditEntry& audit) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    QUELL_ASSIGN_OR_RETURN(int64_t version, IndicatorVersionLocked());
    std::vector<std::string> deleted;
    for (const std::string& id : ids) {
      QUELL_RETURN_IF_ERROR(db_.Run("DELETE FROM indicators WHERE id = ?", id));
      if (db_.Changes() == 0) continue;  // unknown, or listed twice
      ++version;
      QUELL_RETURN_IF_ERROR(db_.Run(
          "INSERT INTO indicator_tombstones (id, version, deleted_time) VALUES (?, ?, ?)", id,
          version, audit.time));
      AuditEntry entry = audit;
      entry.target = id;
      QUELL_RETURN_IF_ERROR(AppendAuditLocked(entry));
      deleted.push_back(id);
    }
    if (deleted.empty()) return deleted;  // nothing changed: rolled back, version unchanged
    QUELL_RETURN_IF_ERROR(db_.Run("UPDATE indicator_state SET version = ?", version));
    QUELL_RETURN_IF_ERROR(tx.Commit());
    return deleted;
  }

  Result<IndicatorVersionInfo> GetIndicatorVersion() override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Statement stmt,
                           db_.Prepare("SELECT version, delta_floor FROM indicator_state"));
    QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Internal("indicator_state has no row");
    IndicatorVersionInfo info;
    info.current = stmt.Int();
    info.delta_floor = stmt.Int();
    return info;
  }

  Result<std::vector<IndicatorChange>> ListIndicatorChanges(int64_t after, int64_t upto,
                                                            bool include_removed,
                                                            size_t limit) override {
    std::lock_guard lock(mu_);
    // Two index range scans on version, merged: both are ordered and capped at `limit`.
    QUELL_ASSIGN_OR_RETURN(
        Statement live,
        db_.Prepare(Sql("SELECT ", kIndicatorColumns,
                        " FROM indicators WHERE version > ?1 AND version <= ?2 "
                        "ORDER BY version LIMIT ?3"),
                    after, upto, Limit(limit)));
    QUELL_ASSIGN_OR_RETURN(std::vector<Indicator> upserts, ReadAll(live, ReadIndicator));
    std::vector<IndicatorChange> removed;
    if (include_removed) {
      QUELL_ASSIGN_OR_RETURN(
          Statement gone,
          db_.Prepare("SELECT id, version FROM indicator_tombstones "
                      "WHERE version > ?1 AND version <= ?2 ORDER BY version LIMIT ?3",
                      after, upto, Limit(limit)));
      while (true) {
        QUELL_ASSIGN_OR_RETURN(bool row, gone.Step());
        if (!row) break;
        IndicatorChange change;
        change.id = gone.Text();
        change.version = gone.Int();
        removed.push_back(std::move(change));
      }
    }
    std::vector<IndicatorChange> changes;
    changes.reserve(std::min(limit, upserts.size() + removed.size()));
    size_t u = 0, r = 0;
    while (changes.size() < limit && (u < upserts.size() || r < removed.size())) {
      if (r == removed.size() || (u < upserts.size() && upserts[u].version < removed[r].version)) {
        IndicatorChange change;
        change.version = upserts[u].version;
        change.id = upserts[u].id;
        change.indicator = std::move(upserts[u]);
        changes.push_back(std::move(change));
        ++u;
      } else {
        changes.push_back(std::move(removed[r]));
        ++r;
      }
    }
    return changes;
  }

  Status PruneIndicatorTombstones(UnixMillis deleted_before) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    QUELL_ASSIGN_OR_RETURN(
        Statement newest,
        db_.Prepare("SELECT MAX(version) FROM indicator_tombstones WHERE deleted_time < ?",
                    deleted_before));
    QUELL_RETURN_IF_ERROR(newest.Step().status());
    std::optional<int64_t> floor = newest.OptionalInt();
    if (!floor) return Status::Ok();
    // Deletion times follow versions, so every tombstone up to `floor` goes.
    QUELL_RETURN_IF_ERROR(db_.Run("DELETE FROM indicator_tombstones WHERE version <= ?", *floor));
    QUELL_RETURN_IF_ERROR(db_.Run(
        "UPDATE indicator_state SET delta_floor = MAX(delta_floor, ?)", *floor));
    return tx.Commit();
  }

  Status SetDeviceGroup(const std::string& device_id, const std::string& group_name) override {
    std::lock_guard lock(mu_);
    QUELL_RETURN_IF_ERROR(
        db_.Run("UPDATE devices SET rbac_group_name = ?2 WHERE id = ?1", device_id, group_name));
    return db_.Changes() == 1 ? Status::Ok() : NotFound("device " + device_id + " not found");
  }

  Status UpdateDeviceInventory(const Device& d) override {
    std::lock_guard lock(mu_);
    QUELL_RETURN_IF_ERROR(db_.Run(
        "UPDATE devices SET computer_dns_name = ?2, os_platform = ?3, os_version = ?4, "
        "os_id = ?5, kernel_version = ?6, architecture = ?7, agent_version = ?8, "
        "ip_addresses = ?9, last_ip_address = ?10, last_seen = MAX(last_seen, ?11) "
        "WHERE id = ?1",
        d.id, d.computer_dns_name, d.os_platform, d.os_version, d.os_id, d.kernel_version,
        d.architecture, d.agent_version, nlohmann::json(d.ip_addresses).dump(),
        d.last_ip_address, d.last_seen));
    return db_.Changes() == 1 ? Status::Ok() : NotFound("device " + d.id + " not found");
  }

  Status RecordIndicatorAck(const std::string& device_id,
                            const IndicatorAckRecord& ack) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    QUELL_RETURN_IF_ERROR(GetDeviceLocked(device_id).status());
    QUELL_RETURN_IF_ERROR(db_.Run(
        "INSERT INTO device_indicator_acks (device_id, version, group_name, time) "
        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device_id) DO UPDATE SET "
        "version = excluded.version, group_name = excluded.group_name, time = excluded.time",
        device_id, ack.version, ack.group_name, ack.time));
    return tx.Commit();
  }

  Result<std::optional<IndicatorAckRecord>> GetIndicatorAck(const std::string& device_id) override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare("SELECT version, group_name, time FROM device_indicator_acks "
                    "WHERE device_id = ?",
                    device_id));
    QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<IndicatorAckRecord>();
    IndicatorAckRecord ack;
    ack.version = stmt.Int();
    ack.group_name = stmt.Text();
    ack.time = stmt.Int();
    return std::optional<IndicatorAckRecord>(std::move(ack));
  }

  Result<std::map<std::string, IndicatorAckRecord>> ListIndicatorAcks() override {
    std::lock_guard lock(mu_);
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt,
        db_.Prepare("SELECT device_id, version, group_name, time FROM device_indicator_acks"));
    std::map<std::string, IndicatorAckRecord> acks;
    while (true) {
      QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return acks;
      std::string id = stmt.Text();
      IndicatorAckRecord ack;
      ack.version = stmt.Int();
      ack.group_name = stmt.Text();
      ack.time = stmt.Int();
      acks.emplace(std::move(id), std::move(ack));
    }
  }

 private:
  Result<int64_t> IndicatorVersionLocked() {
    QUELL_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare("SELECT version FROM indicator_state"));
    QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Internal("indicator_state has no row");
    return stmt.Int();
  }

  Result<Alert> GetAlertLocked(const std::string& id) {
    return GetByIdLocked("alerts", kAlertColumns, ReadAlert, id, "alert " + id + " not found");
  }

  // Writes `alert` if the stored version still equals alert.version, bumping it.
  Status UpdateAlertLocked(const Alert& alert) {
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

  Status AppendAuditLocked(const AuditEntry& e) {
    return db_.Run(
        "INSERT INTO audit (time, actor, operation, target, comment, details_json) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        e.time, e.actor, e.operation, e.target, e.comment, e.details_json);
  }

  Result<Device> GetDeviceLocked(const std::string& id) {
    return GetByIdLocked("devices", kDeviceColumns, ReadDevice, id, "device " + id + " not found");
  }

  Result<MachineAction> GetActionLocked(const std::string& id) {
    return GetByIdLocked("actions", kActionColumns, ReadAction, id, "action " + id + " not found");
  }

  // The one row of `table` with this id, or NotFound(not_found).
  template <typename T>
  Result<T> GetByIdLocked(std::string_view table, std::string_view columns,
                          Result<T> (*read)(Statement&), const std::string& id,
                          std::string not_found) {
    QUELL_ASSIGN_OR_RETURN(
        Statement stmt, db_.Prepare(Sql("SELECT ", columns, " FROM ", table, " WHERE id = ?"), id));
    return ReadOne(stmt, read, std::move(not_found));
  }

  std::mutex mu_;
  Db db_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  QUELL_ASSIGN_OR_RETURN(Db db, Db::Open(path));
  QUELL_RETURN_IF_ERROR(
      sqlite::ApplyMigrations(db, sqlite::SchemaMigrations(), SystemClock::Instance().Now())
          .WithContext(path));
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(std::move(db)));
}

}  // namespace quell::server
