// SqliteStore: indicators, the global indicator version with its tombstones, and what each
// device acknowledged having applied.
#include <algorithm>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "server/store/sqlite/sqlite_store_impl.h"

namespace quell::server::sqlite {
namespace {

// In the order BindIndicator/ReadIndicator use; ?1 is the id.
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

// "id, version" of indicator_tombstones: a removal.
Result<IndicatorChange> ReadTombstone(Statement& s) {
  IndicatorChange change;
  change.id = s.Text();
  change.version = s.Int();
  return change;
}

// "version, group_name, time" of device_indicator_acks.
Result<IndicatorAckRecord> ReadAck(Statement& s) {
  IndicatorAckRecord ack;
  ack.version = s.Int();
  ack.group_name = s.Text();
  ack.time = s.Int();
  return ack;
}

// "device_id, version, group_name, time" of device_indicator_acks.
Result<std::pair<std::string, IndicatorAckRecord>> ReadDeviceAck(Statement& s) {
  std::string device_id = s.Text();
  QUELL_ASSIGN_OR_RETURN(IndicatorAckRecord ack, ReadAck(s));
  return std::pair(std::move(device_id), std::move(ack));
}

}  // namespace

Result<std::vector<Indicator>> SqliteStore::PutIndicators(
    const std::vector<Indicator>& indicators, const AuditEntry& audit) {
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
        std::optional<Indicator> current,
        QueryOptional(db_, ReadIndicator,
                      Sql("SELECT ", kIndicatorColumns,
                          " FROM indicators WHERE type = ?1 AND value = ?2"),
                      IndicatorTypeName(given.type), given.value));
    if (current) {
      row.id = current->id;
      row.creation_time = current->creation_time;
      row.created_by = current->created_by;
      QUELL_ASSIGN_OR_RETURN(
          Statement update,
          db_.Prepare(UpdateSql("indicators", kIndicatorColumns, kIndicatorColumnCount)));
      BindIndicator(update, row);
      QUELL_RETURN_IF_ERROR(update.Run());
    } else {
      // A new indicator without an id is numbered by its version: unique (versions are never
      // reused), a number like Defender's ids, and short, which matters at a million
      // indicators on every agent.
      if (row.id.empty()) row.id = std::to_string(row.version);
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

Result<Indicator> SqliteStore::GetIndicator(const std::string& id) {
  std::lock_guard lock(mu_);
  return GetByIdLocked("indicators", kIndicatorColumns, ReadIndicator, id,
                       "indicator " + id + " not found");
}

Result<std::vector<Indicator>> SqliteStore::ListIndicators(const IndicatorFilter& filter) {
  std::lock_guard lock(mu_);
  std::optional<std::string_view> type, action;
  if (filter.type) type = IndicatorTypeName(*filter.type);
  if (filter.action) action = IndicatorActionName(*filter.action);
  return QueryRows(db_, ReadIndicator,
                   Sql("SELECT ", kIndicatorColumns,
                       " FROM indicators WHERE (?1 IS NULL OR type = ?1) "
                       "AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR value = ?3) "
                       "ORDER BY id LIMIT ?4 OFFSET ?5"),
                   type, action, filter.value, Limit(filter.top), Limit(filter.skip));
}

Result<std::vector<std::string>> SqliteStore::DeleteIndicators(const std::vector<std::string>& ids,
                                                               const AuditEntry& audit) {
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

Result<IndicatorVersionInfo> SqliteStore::GetIndicatorVersion() {
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

Result<std::vector<IndicatorChange>> SqliteStore::ListIndicatorChanges(int64_t after, int64_t upto,
                                                                       bool include_removed,
                                                                       size_t limit) {
  std::lock_guard lock(mu_);
  // Two index range scans on version, merged: both are ordered and capped at `limit`.
  QUELL_ASSIGN_OR_RETURN(std::vector<Indicator> upserts,
                         QueryRows(db_, ReadIndicator,
                                   Sql("SELECT ", kIndicatorColumns,
                                       " FROM indicators WHERE version > ?1 AND version <= ?2 "
                                       "ORDER BY version LIMIT ?3"),
                                   after, upto, Limit(limit)));
  std::vector<IndicatorChange> removed;
  if (include_removed) {
    QUELL_ASSIGN_OR_RETURN(removed,
                           QueryRows(db_, ReadTombstone,
                                     "SELECT id, version FROM indicator_tombstones "
                                     "WHERE version > ?1 AND version <= ?2 ORDER BY version LIMIT ?3",
                                     after, upto, Limit(limit)));
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

Status SqliteStore::PruneIndicatorTombstones(UnixMillis deleted_before) {
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

Status SqliteStore::RecordIndicatorAck(const std::string& device_id,
                                       const IndicatorAckRecord& ack) {
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

Result<std::optional<IndicatorAckRecord>> SqliteStore::GetIndicatorAck(
    const std::string& device_id) {
  std::lock_guard lock(mu_);
  return QueryOptional(
      db_, ReadAck,
      "SELECT version, group_name, time FROM device_indicator_acks WHERE device_id = ?",
      device_id);
}

Result<std::map<std::string, IndicatorAckRecord>> SqliteStore::ListIndicatorAcks() {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(
      auto rows,
      QueryRows(db_, ReadDeviceAck,
                "SELECT device_id, version, group_name, time FROM device_indicator_acks"));
  return std::map<std::string, IndicatorAckRecord>(std::make_move_iterator(rows.begin()),
                                                   std::make_move_iterator(rows.end()));
}

Result<int64_t> SqliteStore::IndicatorVersionLocked() {
  QUELL_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare("SELECT version FROM indicator_state"));
  QUELL_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Internal("indicator_state has no row");
  return stmt.Int();
}

}  // namespace quell::server::sqlite
