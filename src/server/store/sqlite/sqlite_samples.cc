// SqliteStore: files collected from devices (the blobs themselves live in server/blobs; only
// their hashes and where they came from are here) and their deep analyses.
#include <string>
#include <vector>

#include "server/store/sqlite/sqlite_store_impl.h"

namespace quell::server::sqlite {
namespace {

constexpr std::string_view kSampleColumns =
    "sha256, sha1, md5, size, file_name, first_collected, last_collected";
constexpr std::string_view kCollectionColumns =
    "sha256, action_id, machine_id, path, requestor, collected";
constexpr std::string_view kAnalysisColumns =
    "id, sha256, status, requestor, comment, collect_action_id, stage, verdict, report_json, "
    "error, requested, updated";

Result<SampleFile> ReadSampleFile(Statement& s) {
  SampleFile f;
  f.sha256 = s.Text();
  f.sha1 = s.Text();
  f.md5 = s.Text();
  f.size = static_cast<uint64_t>(s.Int());
  f.file_name = s.Text();
  f.first_collected = s.Int();
  f.last_collected = s.Int();
  return f;
}

Result<FileCollection> ReadFileCollection(Statement& s) {
  FileCollection c;
  c.sha256 = s.Text();
  c.action_id = s.Text();
  c.machine_id = s.Text();
  c.path = s.Text();
  c.requestor = s.Text();
  c.collected = s.Int();
  return c;
}

Result<DeepAnalysis> ReadDeepAnalysis(Statement& s) {
  DeepAnalysis a;
  a.id = s.Text();
  a.sha256 = s.Text();
  QUELL_ASSIGN_OR_RETURN(a.status, ReadEnum(s, ParseActionStatus));
  a.requestor = s.Text();
  a.comment = s.Text();
  a.collect_action_id = s.Text();
  a.stage = s.Text();
  a.verdict = s.Text();
  a.report_json = s.Text();
  a.error = s.Text();
  a.requested = s.Int();
  a.updated = s.Int();
  return a;
}

}  // namespace

Status SqliteStore::RecordFileCollection(const SampleFile& f, const FileCollection& c) {
  // A collection filed under another hash than its file would never be listed with it.
  if (f.sha256 != c.sha256) {
    return InvalidArgument("collection of action " + c.action_id + " names sha256 " + c.sha256 +
                           " but its file is " + f.sha256);
  }
  std::lock_guard lock(mu_);
  QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
  QUELL_RETURN_IF_ERROR(db_.Run(
      Sql("INSERT INTO sample_files (", kSampleColumns,
          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (sha256) DO UPDATE SET "
          "sha1 = excluded.sha1, md5 = excluded.md5, size = excluded.size, "
          "last_collected = MAX(last_collected, excluded.last_collected)"),
      f.sha256, f.sha1, f.md5, f.size, f.file_name, f.first_collected, f.last_collected));
  // A duplicate action returns before Commit: the file update above is rolled back too.
  QUELL_RETURN_IF_ERROR(ExistsAs(
      db_.Run(Sql("INSERT INTO file_collections (", kCollectionColumns,
                  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
              c.sha256, c.action_id, c.machine_id, c.path, c.requestor, c.collected),
      "collection of action " + c.action_id + " already recorded"));
  return tx.Commit();
}

Result<SampleFile> SqliteStore::GetSampleFile(const std::string& sha256) {
  std::lock_guard lock(mu_);
  return QueryOne(db_, ReadSampleFile, "no collected file with sha256 " + sha256,
                  Sql("SELECT ", kSampleColumns, " FROM sample_files WHERE sha256 = ?1"),
                  sha256);
}

Result<std::vector<FileCollection>> SqliteStore::ListFileCollections(const std::string& sha256) {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadFileCollection,
                   Sql("SELECT ", kCollectionColumns,
                       " FROM file_collections WHERE sha256 = ?1 "
                       "ORDER BY collected DESC, action_id"),
                   sha256);
}

Status SqliteStore::PutDeepAnalysis(const DeepAnalysis& a) {
  std::lock_guard lock(mu_);
  return db_.Run(Sql("INSERT OR REPLACE INTO deep_analyses (", kAnalysisColumns,
                     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                 a.id, a.sha256, ActionStatusName(a.status), a.requestor, a.comment,
                 a.collect_action_id, a.stage, a.verdict, a.report_json, a.error, a.requested,
                 a.updated);
}

Result<DeepAnalysis> SqliteStore::GetDeepAnalysis(const std::string& id) {
  std::lock_guard lock(mu_);
  return GetByIdLocked("deep_analyses", kAnalysisColumns, ReadDeepAnalysis, id,
                       "deep analysis " + id + " not found");
}

Result<std::vector<DeepAnalysis>> SqliteStore::ListDeepAnalyses(const std::string& sha256) {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadDeepAnalysis,
                   Sql("SELECT ", kAnalysisColumns,
                       " FROM deep_analyses WHERE sha256 = ?1 ORDER BY requested DESC, id"),
                   sha256);
}

Result<std::vector<DeepAnalysis>> SqliteStore::ListUnfinishedDeepAnalyses() {
  std::lock_guard lock(mu_);
  return QueryRows(db_, ReadDeepAnalysis,
                   Sql("SELECT ", kAnalysisColumns,
                       " FROM deep_analyses WHERE status IN (?1, ?2) ORDER BY requested, id"),
                   ActionStatusName(ActionStatus::kPending),
                   ActionStatusName(ActionStatus::kInProgress));
}

}  // namespace quell::server::sqlite
