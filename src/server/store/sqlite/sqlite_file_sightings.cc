// SqliteStore: where files were seen.
#include <string>
#include <vector>

#include "server/store/sqlite/sqlite_store_impl.h"

namespace quell::server::sqlite {
namespace {

Result<FileSighting> ReadFileSighting(Statement& s) {
  FileSighting f;
  f.device_id = s.Text();
  f.sha256 = s.Text();
  f.sha1 = s.Text();
  f.md5 = s.Text();
  f.path = s.Text();
  f.source = s.Text();
  f.first_seen = s.Int();
  f.last_seen = s.Int();
  return f;
}

}  // namespace

Status SqliteStore::RecordFileSightings(const std::vector<FileSighting>& sightings) {
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

Result<std::vector<FileSighting>> SqliteStore::ListFileSightings(const std::string& hash,
                                                                 size_t top) {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadFileSighting,
                   "SELECT device_id, sha256, sha1, md5, path, source, first_seen, last_seen "
                   "FROM file_sightings WHERE sha256 = ?1 OR sha1 = ?1 OR md5 = ?1 "
                   "ORDER BY last_seen DESC, device_id, path LIMIT ?2",
                   hash, Limit(top));
}

}  // namespace quell::server::sqlite
