// SqliteStore: files devices uploaded for their actions (the blobs themselves live in
// server/blobs; only their names and hashes are here).
#include <string>
#include <vector>

#include "server/store/sqlite/sqlite_store_impl.h"

namespace quell::server::sqlite {
namespace {

constexpr std::string_view kArtifactColumns = "action_id, name, sha256, size, created_ms";

Result<ActionArtifact> ReadArtifact(Statement& s) {
  ActionArtifact a;
  a.action_id = s.Text();
  a.name = s.Text();
  a.sha256 = s.Text();
  a.size = static_cast<uint64_t>(s.Int());
  a.created = s.Int();
  return a;
}

}  // namespace

Status SqliteStore::PutActionArtifact(const ActionArtifact& a) {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  // Checked here rather than left to the foreign key, so the caller gets NotFound, not a
  // constraint failure.
  QUELL_RETURN_IF_ERROR(GetActionLocked(a.action_id).status());
  QUELL_RETURN_IF_ERROR(db_.Run(
      Sql("INSERT INTO action_artifacts (", kArtifactColumns,
          ") VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (action_id, name) DO UPDATE SET "
          "sha256 = excluded.sha256, size = excluded.size, created_ms = excluded.created_ms"),
      a.action_id, a.name, a.sha256, a.size, a.created));
  return tx.Commit();
}

Result<ActionArtifact> SqliteStore::GetActionArtifact(const std::string& action_id,
                                                      const std::string& name) {
  std::lock_guard lock(mu_);
  return QueryOne(db_, ReadArtifact, "action " + action_id + " has no artifact " + name,
                  Sql("SELECT ", kArtifactColumns,
                      " FROM action_artifacts WHERE action_id = ?1 AND name = ?2"),
                  action_id, name);
}

Result<std::vector<ActionArtifact>> SqliteStore::ListActionArtifacts(
    const std::string& action_id) {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadArtifact,
                   Sql("SELECT ", kArtifactColumns,
                       " FROM action_artifacts WHERE action_id = ?1 ORDER BY name"),
                   action_id);
}

}  // namespace quell::server::sqlite
