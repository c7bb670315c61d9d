// SqliteStore: the live response library (the files themselves are blobs in server/blobs;
// only their names, hashes and descriptions are here).
#include <string>
#include <vector>

#include "server/store/sqlite/sqlite_store_impl.h"

namespace quell::server::sqlite {
namespace {

constexpr std::string_view kLibraryColumns =
    "name, sha256, size, description, has_parameters, parameters_description, created_by, "
    "creation_time, last_updated_by, last_updated_time";

Result<LibraryFile> ReadLibraryFile(Statement& s) {
  LibraryFile f;
  f.name = s.Text();
  f.sha256 = s.Text();
  f.size = static_cast<uint64_t>(s.Int());
  f.description = s.Text();
  f.has_parameters = s.Bool();
  f.parameters_description = s.Text();
  f.created_by = s.Text();
  f.creation_time = s.Int();
  f.last_updated_by = s.Text();
  f.last_updated_time = s.Int();
  return f;
}

}  // namespace

Status SqliteStore::PutLibraryFile(const LibraryFile& f, const AuditEntry* audit) {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  QUELL_RETURN_IF_ERROR(db_.Run(
      Sql("INSERT OR REPLACE INTO library_files (", kLibraryColumns,
          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
      f.name, f.sha256, f.size, f.description, f.has_parameters, f.parameters_description,
      f.created_by, f.creation_time, f.last_updated_by, f.last_updated_time));
  if (audit != nullptr) QUELL_RETURN_IF_ERROR(AppendAuditLocked(*audit));
  return tx.Commit();
}

Result<LibraryFile> SqliteStore::GetLibraryFile(const std::string& name) {
  std::lock_guard lock(mu_);
  return QueryOne(db_, ReadLibraryFile, "library file '" + name + "' not found",
                  Sql("SELECT ", kLibraryColumns, " FROM library_files WHERE name = ?1"), name);
}

Result<std::vector<LibraryFile>> SqliteStore::ListLibraryFiles() {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadLibraryFile,
                   Sql("SELECT ", kLibraryColumns, " FROM library_files ORDER BY name"));
}

Status SqliteStore::DeleteLibraryFile(const std::string& name, const AuditEntry* audit) {
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  QUELL_RETURN_IF_ERROR(db_.Run("DELETE FROM library_files WHERE name = ?1", name));
  // Returning before Commit rolls back: nothing, not even the audit entry, is written.
  if (db_.Changes() != 1) return NotFound("library file '" + name + "' not found");
  if (audit != nullptr) QUELL_RETURN_IF_ERROR(AppendAuditLocked(*audit));
  return tx.Commit();
}

}  // namespace quell::server::sqlite
