// Opening the SQLite store, the helpers every resource file shares, and the devices, tokens
// and audit log. The other resources live in sqlite_<resource>.cc (see sqlite_store_impl.h).
#include "server/store/sqlite/sqlite_store.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "server/store/sqlite/db.h"
#include "server/store/sqlite/migrations.h"
#include "server/store/sqlite/sqlite_store_impl.h"

namespace quell::server {
namespace sqlite {

// ---- shared helpers ----

std::string InsertSql(std::string_view table, std::string_view columns, int count) {
  return Sql("INSERT INTO ", table, " (", columns, ") VALUES (", Placeholders(count), ")");
}

std::string UpdateSql(std::string_view table, std::string_view columns, int count) {
  return Sql("UPDATE ", table, " SET (", columns, ") = (", Placeholders(count), ") WHERE id = ?1");
}

Result<std::vector<std::string>> ReadStringList(Statement& stmt) {
  std::string text = stmt.Text();
  try {
    return nlohmann::json::parse(text).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return Internal(std::string("stored string list is malformed: ") + e.what());
  }
}

namespace {

// Column lists, in the order the Bind*/Read* functions below use.
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

constexpr std::string_view kAuditColumns =
    "seq, time, actor, operation, target, comment, details_json";

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

}  // namespace

// ---- devices ----

Status SqliteStore::CreateDevice(const Device& device) {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(Statement stmt,
                         db_.Prepare(InsertSql("devices", kDeviceColumns, kDeviceColumnCount)));
  BindDevice(stmt, device);
  return ExistsAs(stmt.Run(), "device " + device.id + " already exists");
}

Result<Device> SqliteStore::GetDevice(const std::string& id) {
  std::lock_guard lock(mu_);
  return GetDeviceLocked(id);
}

Result<std::vector<Device>> SqliteStore::ListDevices() {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadDevice, Sql("SELECT ", kDeviceColumns, " FROM devices ORDER BY id"));
}

Status SqliteStore::UpdateDevice(const Device& device) {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(Statement stmt,
                         db_.Prepare(UpdateSql("devices", kDeviceColumns, kDeviceColumnCount)));
  BindDevice(stmt, device);
  QUELL_RETURN_IF_ERROR(stmt.Run());
  return db_.Changes() == 1 ? Status::Ok() : NotFound("device " + device.id + " not found");
}

Status SqliteStore::TouchDevice(const std::string& id, UnixMillis last_seen) {
  std::lock_guard lock(mu_);
  QUELL_RETURN_IF_ERROR(
      db_.Run("UPDATE devices SET last_seen = MAX(last_seen, ?2) WHERE id = ?1", id, last_seen));
  return db_.Changes() == 1 ? Status::Ok() : NotFound("device " + id + " not found");
}

Status SqliteStore::TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  for (const auto& [id, last_seen] : seen) {
    QUELL_RETURN_IF_ERROR(db_.Run(
        "UPDATE devices SET last_seen = MAX(last_seen, ?2) WHERE id = ?1", id, last_seen));
  }
  return tx.Commit();
}

Status SqliteStore::SetDeviceGroup(const std::string& device_id, const std::string& group_name) {
  std::lock_guard lock(mu_);
  QUELL_RETURN_IF_ERROR(
      db_.Run("UPDATE devices SET rbac_group_name = ?2 WHERE id = ?1", device_id, group_name));
  return db_.Changes() == 1 ? Status::Ok() : NotFound("device " + device_id + " not found");
}

Status SqliteStore::UpdateDeviceInventory(const Device& d) {
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

Result<Device> SqliteStore::GetDeviceLocked(const std::string& id) {
  return GetByIdLocked("devices", kDeviceColumns, ReadDevice, id, "device " + id + " not found");
}

// ---- tokens ----

Status SqliteStore::CreateApiToken(const ApiToken& t) {
  std::lock_guard lock(mu_);
  Status status = db_.Run(InsertSql("api_tokens", kApiTokenColumns, kApiTokenColumnCount), t.id,
                          t.name, RoleName(t.role), t.secret_sha256, t.created, t.revoked);
  return ExistsAs(status, "api token " + t.id + " or its secret already exists");
}

Result<ApiToken> SqliteStore::FindApiTokenBySecretHash(const std::string& secret_sha256) {
  std::lock_guard lock(mu_);
  return QueryOne(db_, ReadApiToken, "no api token has this secret",
                  Sql("SELECT ", kApiTokenColumns, " FROM api_tokens WHERE secret_sha256 = ?"),
                  secret_sha256);
}

Status SqliteStore::RevokeApiToken(const std::string& id) {
  std::lock_guard lock(mu_);
  QUELL_RETURN_IF_ERROR(db_.Run("UPDATE api_tokens SET revoked = 1 WHERE id = ?", id));
  return db_.Changes() == 1 ? Status::Ok() : NotFound("api token " + id + " not found");
}

Status SqliteStore::CreateEnrollmentToken(const EnrollmentToken& t) {
  std::lock_guard lock(mu_);
  Status status = db_.Run(
      InsertSql("enrollment_tokens", kEnrollmentTokenColumns, kEnrollmentTokenColumnCount), t.id,
      t.secret_sha256, t.uses_left, t.expires, t.created);
  return ExistsAs(status, "enrollment token " + t.id + " or its secret already exists");
}

Status SqliteStore::ConsumeEnrollmentToken(const std::string& secret_sha256, UnixMillis now) {
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

// ---- audit ----

Status SqliteStore::AppendAudit(const AuditEntry& e) {
  std::lock_guard lock(mu_);
  return AppendAuditLocked(e);
}

Result<std::vector<AuditEntry>> SqliteStore::ListAudit(const AuditFilter& filter) {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadAudit,
                   Sql("SELECT ", kAuditColumns,
                       " FROM audit WHERE (?1 IS NULL OR target = ?1) "
                       "ORDER BY seq LIMIT ?2 OFFSET ?3"),
                   filter.target, Limit(filter.top), Limit(filter.skip));
}

Status SqliteStore::AppendAuditLocked(const AuditEntry& e) {
  return db_.Run(
      "INSERT INTO audit (time, actor, operation, target, comment, details_json) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      e.time, e.actor, e.operation, e.target, e.comment, e.details_json);
}

}  // namespace sqlite

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  QUELL_ASSIGN_OR_RETURN(sqlite::Db db, sqlite::Db::Open(path));
  QUELL_RETURN_IF_ERROR(
      sqlite::ApplyMigrations(db, sqlite::SchemaMigrations(), SystemClock::Instance().Now())
          .WithContext(path));
  return std::unique_ptr<Store>(std::make_unique<sqlite::SqliteStore>(std::move(db)));
}

}  // namespace quell::server
