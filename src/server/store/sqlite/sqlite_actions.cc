// SqliteStore: machine actions.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "server/store/sqlite/sqlite_store_impl.h"

namespace quell::server::sqlite {
namespace {

// In the order BindAction/ReadAction use; ?1 is the id.
constexpr std::string_view kActionColumns =
    "id, type, scope, requestor, requestor_comment, external_id, request_source, title, status, "
    "machine_id, computer_dns_name, creation_time, last_update_time, expiration_time, "
    "cancellation_time, cancellation_requestor, cancellation_comment, parameters_json, "
    "result_json, status_message, progress_percent";
constexpr int kActionColumnCount = 21;

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

Result<std::pair<std::string, int64_t>> ReadStatusCount(Statement& s) {
  std::string name = s.Text();
  int64_t n = s.Int();
  return std::pair(std::move(name), n);
}

}  // namespace

Status SqliteStore::InsertAction(const MachineAction& action, const AuditEntry* audit) {
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

Result<MachineAction> SqliteStore::GetAction(const std::string& id) {
  std::lock_guard lock(mu_);
  return GetActionLocked(id);
}

Result<std::vector<MachineAction>> SqliteStore::ListActions(const ActionFilter& filter) {
  std::lock_guard lock(mu_);
  std::optional<std::string_view> status;
  if (filter.status) status = ActionStatusName(*filter.status);
  return QueryRows(db_, ReadAction,
                   Sql("SELECT ", kActionColumns,
                       " FROM actions "
                       "WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR machine_id = ?2) "
                       "AND (?3 IS NULL OR type = ?3) "
                       "ORDER BY creation_time DESC, id LIMIT ?4 OFFSET ?5"),
                   status, filter.machine_id, filter.type, Limit(filter.top), Limit(filter.skip));
}

Status SqliteStore::UpdateAction(const MachineAction& action, ActionStatus expected,
                                 const AuditEntry* audit) {
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

Result<std::vector<MachineAction>> SqliteStore::ListOpenActions(const std::string& machine_id) {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadAction,
                   Sql("SELECT ", kActionColumns,
                       " FROM actions "
                       "WHERE machine_id = ?1 AND status IN (?2, ?3) ORDER BY creation_time, id"),
                   machine_id, ActionStatusName(ActionStatus::kPending),
                   ActionStatusName(ActionStatus::kInProgress));
}

Result<std::vector<MachineAction>> SqliteStore::ListExpiredActions(UnixMillis now) {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadAction,
                   Sql("SELECT ", kActionColumns,
                       " FROM actions WHERE status IN (?1, ?2) "
                       "AND expiration_time <= ?3 ORDER BY expiration_time, id"),
                   ActionStatusName(ActionStatus::kPending),
                   ActionStatusName(ActionStatus::kInProgress), now);
}

Result<std::map<ActionStatus, int64_t>> SqliteStore::CountActionsByStatus() {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(
      auto rows,
      QueryRows(db_, ReadStatusCount, "SELECT status, COUNT(*) FROM actions GROUP BY status"));
  std::map<ActionStatus, int64_t> counts;
  for (const auto& [name, n] : rows) {
    if (auto status = ParseActionStatus(name)) counts[*status] = n;
  }
  return counts;
}

Result<MachineAction> SqliteStore::GetActionLocked(const std::string& id) {
  return GetByIdLocked("actions", kActionColumns, ReadAction, id, "action " + id + " not found");
}

}  // namespace quell::server::sqlite
