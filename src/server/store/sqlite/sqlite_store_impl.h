// Internal to the SQLite store: the SqliteStore class and the helpers its files share. The
// methods are defined one resource per file (sqlite_store.cc: devices, tokens, audit and
// opening; sqlite_actions.cc, sqlite_artifacts.cc, sqlite_alerts.cc, sqlite_file_sightings.cc,
// sqlite_indicators.cc, sqlite_library.cc, sqlite_samples.cc). Callers outside the store use
// sqlite_store.h only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "server/store/sqlite/db.h"
#include "server/store/store.h"

namespace quell::server::sqlite {

// ---- shared helpers ----

// Concatenates constant SQL fragments. Never used with values.
template <typename... Parts>
std::string Sql(const Parts&... parts) {
  std::string sql;
  (sql.append(parts), ...);
  return sql;
}

// "INSERT INTO <table> (<columns>) VALUES (?1, ..., ?<count>)". Column lists are written in
// the order their Bind*/Read* functions use, so INSERT and UPDATE share one list of numbered
// placeholders, and ?1 is always the id.
std::string InsertSql(std::string_view table, std::string_view columns, int count);

// "UPDATE <table> SET (<columns>) = (?1, ..., ?<count>) WHERE id = ?1": the INSERT bindings
// serve, since ?1 is always the id.
std::string UpdateSql(std::string_view table, std::string_view columns, int count);

// A size_t count (top, skip) as a LIMIT/OFFSET value, saturating.
inline int64_t Limit(size_t n) {
  return static_cast<int64_t>(std::min<size_t>(n, std::numeric_limits<int64_t>::max()));
}

template <typename E>
Result<E> ReadEnum(Statement& stmt, std::optional<E> (*parse)(std::string_view)) {
  std::string text = stmt.Text();
  if (std::optional<E> value = parse(text)) return *value;
  return Internal("stored enum value '" + text + "' is unknown");
}

// A JSON array of strings.
Result<std::vector<std::string>> ReadStringList(Statement& stmt);

// Runs a SELECT with `args` bound in order and reads every row with `read`: the one loop over
// result rows in the store.
template <typename T, typename... Args>
Result<std::vector<T>> QueryRows(Db& db, Result<T> (*read)(Statement&), std::string_view sql,
                                 const Args&... args) {
  QUELL_ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql, args...));
  std::vector<T> rows;
  while (true) {
    QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return rows;
    QUELL_ASSIGN_OR_RETURN(T value, read(stmt));
    rows.push_back(std::move(value));
  }
}

// The first row of a SELECT, or nullopt when there is none.
template <typename T, typename... Args>
Result<std::optional<T>> QueryOptional(Db& db, Result<T> (*read)(Statement&),
                                       std::string_view sql, const Args&... args) {
  QUELL_ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql, args...));
  QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<T>();
  QUELL_ASSIGN_OR_RETURN(T value, read(stmt));
  return std::optional<T>(std::move(value));
}

// The first row of a SELECT, or NotFound(not_found) when there is none.
template <typename T, typename... Args>
Result<T> QueryOne(Db& db, Result<T> (*read)(Statement&), std::string not_found,
                   std::string_view sql, const Args&... args) {
  QUELL_ASSIGN_OR_RETURN(std::optional<T> value, QueryOptional(db, read, sql, args...));
  if (!value) return NotFound(std::move(not_found));
  return std::move(*value);
}

// Replaces the message of AlreadyExists, which SQLite phrases in terms of tables.
inline Status ExistsAs(Status status, std::string message) {
  return status.code() == StatusCode::kAlreadyExists ? AlreadyExists(std::move(message)) : status;
}

// ---- the store ----

// Every public method locks mu_ for its whole run: one connection, used by one thread at a
// time. Methods ending in Locked expect mu_ to be held already.
class SqliteStore final : public Store {
 public:
  explicit SqliteStore(Db db) : db_(std::move(db)) {}

  // Devices, tokens, audit: sqlite_store.cc.
  Status CreateDevice(const Device& device) override;
  Result<Device> GetDevice(const std::string& id) override;
  Result<std::vector<Device>> ListDevices() override;
  Status UpdateDevice(const Device& device) override;
  Status TouchDevice(const std::string& id, UnixMillis last_seen) override;
  Status TouchDevices(const std::vector<std::pair<std::string, UnixMillis>>& seen) override;
  Status SetDeviceGroup(const std::string& device_id, const std::string& group_name) override;
  Status UpdateDeviceInventory(const Device& reported) override;
  Status CreateApiToken(const ApiToken& token) override;
  Result<ApiToken> FindApiTokenBySecretHash(const std::string& secret_sha256) override;
  Status RevokeApiToken(const std::string& id) override;
  Status CreateEnrollmentToken(const EnrollmentToken& token) override;
  Status ConsumeEnrollmentToken(const std::string& secret_sha256, UnixMillis now) override;
  Status AppendAudit(const AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> ListAudit(const AuditFilter& filter) override;

  // Actions: sqlite_actions.cc.
  Status InsertAction(const MachineAction& action, const AuditEntry* audit) override;
  Result<MachineAction> GetAction(const std::string& id) override;
  Result<std::vector<MachineAction>> ListActions(const ActionFilter& filter) override;
  Status UpdateAction(const MachineAction& action, ActionStatus expected,
                      const AuditEntry* audit) override;
  Result<std::vector<MachineAction>> ListOpenActions(const std::string& machine_id) override;
  Result<std::map<ActionStatus, int64_t>> CountActionsByStatus() override;
  Result<std::vector<MachineAction>> ListExpiredActions(UnixMillis now) override;

  // Action artifacts: sqlite_artifacts.cc.
  Status PutActionArtifact(const ActionArtifact& artifact) override;
  Result<ActionArtifact> GetActionArtifact(const std::string& action_id,
                                           const std::string& name) override;
  Result<std::vector<ActionArtifact>> ListActionArtifacts(const std::string& action_id) override;

  // Live response library: sqlite_library.cc.
  Status PutLibraryFile(const LibraryFile& file, const AuditEntry* audit) override;
  Result<LibraryFile> GetLibraryFile(const std::string& name) override;
  Result<std::vector<LibraryFile>> ListLibraryFiles() override;
  Status DeleteLibraryFile(const std::string& name, const AuditEntry* audit) override;

  // Alerts and detections: sqlite_alerts.cc.
  Result<Alert> GetAlert(const std::string& id) override;
  Result<std::vector<Alert>> ListAlerts(const AlertFilter& filter) override;
  Status UpdateAlert(const Alert& alert) override;
  Result<std::optional<Alert>> FindOpenAlert(const std::string& machine_id,
                                             const std::string& dedup_key,
                                             UnixMillis active_since) override;
  Status RecordDetection(const std::string& detection_id, const Alert& alert,
                         bool create) override;
  Result<bool> IsDetectionRecorded(const std::string& detection_id) override;

  // File sightings: sqlite_file_sightings.cc.
  Status RecordFileSightings(const std::vector<FileSighting>& sightings) override;
  Result<std::vector<FileSighting>> ListFileSightings(const std::string& hash,
                                                      size_t top) override;

  // Collected files and deep analyses: sqlite_samples.cc.
  Status RecordFileCollection(const SampleFile& file, const FileCollection& collection) override;
  Result<SampleFile> GetSampleFile(const std::string& sha256) override;
  Result<std::vector<FileCollection>> ListFileCollections(const std::string& sha256) override;
  Status PutDeepAnalysis(const DeepAnalysis& analysis) override;
  Result<DeepAnalysis> GetDeepAnalysis(const std::string& id) override;
  Result<std::vector<DeepAnalysis>> ListDeepAnalyses(const std::string& sha256) override;
  Result<std::vector<DeepAnalysis>> ListUnfinishedDeepAnalyses() override;

  // Indicators, their versions and tombstones, and device acks: sqlite_indicators.cc.
  Result<std::vector<Indicator>> PutIndicators(const std::vector<Indicator>& indicators,
                                               const AuditEntry& audit) override;
  Result<Indicator> GetIndicator(const std::string& id) override;
  Result<std::vector<Indicator>> ListIndicators(const IndicatorFilter& filter) override;
  Result<std::vector<std::string>> DeleteIndicators(const std::vector<std::string>& ids,
                                                    const AuditEntry& audit) override;
  Result<IndicatorVersionInfo> GetIndicatorVersion() override;
  Result<std::vector<IndicatorChange>> ListIndicatorChanges(int64_t after, int64_t upto,
                                                            bool include_removed,
                                                            size_t limit) override;
  Status PruneIndicatorTombstones(UnixMillis deleted_before) override;
  Status RecordIndicatorAck(const std::string& device_id,
                            const IndicatorAckRecord& ack) override;
  Result<std::optional<IndicatorAckRecord>> GetIndicatorAck(const std::string& device_id) override;
  Result<std::map<std::string, IndicatorAckRecord>> ListIndicatorAcks() override;

 private:
  Result<Device> GetDeviceLocked(const std::string& id);        // sqlite_store.cc
  Status AppendAuditLocked(const AuditEntry& entry);            // sqlite_store.cc
  Result<MachineAction> GetActionLocked(const std::string& id);  // sqlite_actions.cc
  Result<Alert> GetAlertLocked(const std::string& id);          // sqlite_alerts.cc
  // Writes `alert` if the stored version still equals alert.version, bumping it.
  Status UpdateAlertLocked(const Alert& alert);                 // sqlite_alerts.cc
  Result<int64_t> IndicatorVersionLocked();                     // sqlite_indicators.cc

  // The one row of `table` with this id, or NotFound(not_found).
  template <typename T>
  Result<T> GetByIdLocked(std::string_view table, std::string_view columns,
                          Result<T> (*read)(Statement&), const std::string& id,
                          std::string not_found) {
    return QueryOne(db_, read, std::move(not_found),
                    Sql("SELECT ", columns, " FROM ", table, " WHERE id = ?"), id);
  }

  std::mutex mu_;
  Db db_;
};

}  // namespace quell::server::sqlite
