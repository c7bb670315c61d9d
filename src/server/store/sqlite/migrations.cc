#include "server/store/sqlite/migrations.h"

#include <string>

#include "common/logging.h"

namespace quell::server::sqlite {
namespace {

// Conventions: times are INTEGER milliseconds since the Unix epoch; enums are TEXT in their
// REST spelling (store.h); lists are JSON text; booleans are INTEGER 0/1.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE devices (
  id                TEXT PRIMARY KEY,
  computer_dns_name TEXT NOT NULL,
  os_platform       TEXT NOT NULL,
  os_version        TEXT NOT NULL,
  os_id             TEXT NOT NULL,
  kernel_version    TEXT NOT NULL,
  architecture      TEXT NOT NULL,
  agent_version     TEXT NOT NULL,
  ip_addresses      TEXT NOT NULL,
  last_ip_address   TEXT NOT NULL,
  rbac_group_name   TEXT NOT NULL,
  first_seen        INTEGER NOT NULL,
  last_seen         INTEGER NOT NULL,
  cert_serial_hex   TEXT NOT NULL,
  offboarded        INTEGER NOT NULL,
  isolation         TEXT NOT NULL
) STRICT;

CREATE TABLE api_tokens (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  role          TEXT NOT NULL,
  secret_sha256 TEXT NOT NULL UNIQUE,
  created       INTEGER NOT NULL,
  revoked       INTEGER NOT NULL
) STRICT;

CREATE TABLE enrollment_tokens (
  id            TEXT PRIMARY KEY,
  secret_sha256 TEXT NOT NULL UNIQUE,
  uses_left     INTEGER NOT NULL,
  expires       INTEGER NOT NULL,
  created       INTEGER NOT NULL
) STRICT;

CREATE TABLE actions (
  id                     TEXT PRIMARY KEY,
  type                   TEXT NOT NULL,
  scope                  TEXT NOT NULL,
  requestor              TEXT NOT NULL,
  requestor_comment      TEXT NOT NULL,
  external_id            TEXT NOT NULL,
  request_source         TEXT NOT NULL,
  title                  TEXT NOT NULL,
  status                 TEXT NOT NULL,
  machine_id             TEXT NOT NULL REFERENCES devices (id),
  computer_dns_name      TEXT NOT NULL,
  creation_time          INTEGER NOT NULL,
  last_update_time       INTEGER NOT NULL,
  expiration_time        INTEGER NOT NULL,
  cancellation_time      INTEGER,
  cancellation_requestor TEXT NOT NULL,
  cancellation_comment   TEXT NOT NULL,
  parameters_json        TEXT NOT NULL,
  result_json            TEXT NOT NULL,
  status_message         TEXT NOT NULL,
  progress_percent       INTEGER NOT NULL
) STRICT;
CREATE INDEX actions_by_creation ON actions (creation_time DESC, id);
CREATE INDEX actions_by_machine ON actions (machine_id, creation_time);
CREATE INDEX actions_by_status ON actions (status, expiration_time);

CREATE TABLE audit (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  time         INTEGER NOT NULL,
  actor        TEXT NOT NULL,
  operation    TEXT NOT NULL,
  target       TEXT NOT NULL,
  comment      TEXT NOT NULL,
  details_json TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_target ON audit (target, seq);
)sql"},
    {2, R"sql(
CREATE TABLE alerts (
  id                TEXT PRIMARY KEY,
  title             TEXT NOT NULL,
  description       TEXT NOT NULL,
  severity          TEXT NOT NULL,
  severity_rank     INTEGER NOT NULL,
  status            TEXT NOT NULL,
  classification    TEXT NOT NULL,
  determination     TEXT NOT NULL,
  category          TEXT NOT NULL,
  detection_source  TEXT NOT NULL,
  detector_id       TEXT NOT NULL,
  threat_name       TEXT NOT NULL,
  mitre_techniques  TEXT NOT NULL,
  machine_id        TEXT NOT NULL REFERENCES devices (id),
  computer_dns_name TEXT NOT NULL,
  first_activity    INTEGER NOT NULL,
  last_activity     INTEGER NOT NULL,
  created           INTEGER NOT NULL,
  last_update       INTEGER NOT NULL,
  resolved          INTEGER,
  assigned_to       TEXT NOT NULL,
  comments_json     TEXT NOT NULL,
  evidence_json     TEXT NOT NULL,
  event_count       INTEGER NOT NULL,
  dedup_key         TEXT NOT NULL,
  action_id         TEXT NOT NULL,
  incident_id       TEXT NOT NULL,
  version           INTEGER NOT NULL
) STRICT;
CREATE INDEX alerts_by_last_activity ON alerts (last_activity DESC, id);
CREATE INDEX alerts_by_dedup ON alerts (machine_id, dedup_key, status, last_activity);
CREATE INDEX alerts_by_incident ON alerts (incident_id);

-- Every detection id ingested, so a detection resent after a lost ack changes nothing.
CREATE TABLE alert_detections (
  detection_id TEXT PRIMARY KEY,
  alert_id     TEXT NOT NULL REFERENCES alerts (id),
  machine_id   TEXT NOT NULL,
  received     INTEGER NOT NULL
) STRICT;
CREATE INDEX alert_detections_by_alert ON alert_detections (alert_id);
)sql"},
    {3, R"sql(
-- Where files were seen (agents report executables run and files scanned).
CREATE TABLE file_sightings (
  device_id  TEXT NOT NULL REFERENCES devices (id),
  sha256     TEXT NOT NULL,
  sha1       TEXT NOT NULL,
  md5        TEXT NOT NULL,
  path       TEXT NOT NULL,
  source     TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  PRIMARY KEY (device_id, sha256, path)
) STRICT;
CREATE INDEX file_sightings_by_sha256 ON file_sightings (sha256);
CREATE INDEX file_sightings_by_sha1 ON file_sightings (sha1);
CREATE INDEX file_sightings_by_md5 ON file_sightings (md5);
)sql"},
    // Indicators (issue 4). Numbered 4: 3 is reserved for file sightings; each migration is
    // applied by its own number, so the order in which they land does not matter.
    {4, R"sql(
CREATE TABLE indicators (
  id                  TEXT PRIMARY KEY,
  type                TEXT NOT NULL,
  value               TEXT NOT NULL,
  action              TEXT NOT NULL,
  severity            TEXT NOT NULL,
  title               TEXT NOT NULL,
  description         TEXT NOT NULL,
  recommended_actions TEXT NOT NULL,
  application         TEXT NOT NULL,
  expiration_time     INTEGER,
  generate_alert      INTEGER NOT NULL,
  rbac_group_names    TEXT NOT NULL,
  created_by          TEXT NOT NULL,
  last_updated_by     TEXT NOT NULL,
  creation_time       INTEGER NOT NULL,
  last_update_time    INTEGER NOT NULL,
  version             INTEGER NOT NULL UNIQUE   -- its index serves "changes since V"
) STRICT;
-- Value first: serves the submit-or-update lookup and $filter on indicatorValue alike.
CREATE UNIQUE INDEX indicators_by_value ON indicators (value, type);

-- Deleted indicators, so a delta can tell agents to remove them; pruned by age.
CREATE TABLE indicator_tombstones (
  id           TEXT PRIMARY KEY,
  version      INTEGER NOT NULL UNIQUE,
  deleted_time INTEGER NOT NULL
) STRICT;
CREATE INDEX indicator_tombstones_by_time ON indicator_tombstones (deleted_time);

-- The global indicator version and the oldest base a delta can be computed from.
CREATE TABLE indicator_state (
  singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
  version     INTEGER NOT NULL,
  delta_floor INTEGER NOT NULL
) STRICT;
INSERT INTO indicator_state (singleton, version, delta_floor) VALUES (1, 0, 0);

CREATE TABLE device_indicator_acks (
  device_id  TEXT PRIMARY KEY REFERENCES devices (id),
  version    INTEGER NOT NULL,
  group_name TEXT NOT NULL,
  time       INTEGER NOT NULL
) STRICT;
)sql"},
    // Action artifacts (issue 5): files a device uploaded for an action, kept as blobs.
    {5, R"sql(
CREATE TABLE action_artifacts (
  action_id  TEXT NOT NULL REFERENCES actions (id),
  name       TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  size       INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (action_id, name)
) STRICT;
)sql"},
    // The live response library (issue 5): scripts and tools, kept as blobs.
    {6, R"sql(
CREATE TABLE library_files (
  name                   TEXT PRIMARY KEY,
  sha256                 TEXT NOT NULL,
  size                   INTEGER NOT NULL,
  description            TEXT NOT NULL,
  has_parameters         INTEGER NOT NULL,
  parameters_description TEXT NOT NULL,
  created_by             TEXT NOT NULL,
  creation_time          INTEGER NOT NULL,
  last_updated_by        TEXT NOT NULL,
  last_updated_time      INTEGER NOT NULL
) STRICT;
)sql"},
    // Collected files and their deep analyses: samples devices sent for CollectFile actions
    // (kept as blobs named by sha256) and their detonations in quell-sandbox.
    {7, R"sql(
CREATE TABLE sample_files (
  sha256          TEXT PRIMARY KEY,
  sha1            TEXT NOT NULL,
  md5             TEXT NOT NULL,
  size            INTEGER NOT NULL,
  file_name       TEXT NOT NULL,
  first_collected INTEGER NOT NULL,
  last_collected  INTEGER NOT NULL
) STRICT;

-- No reference to actions or devices: a collection stays a fact about the sample even if
-- they are gone.
CREATE TABLE file_collections (
  action_id  TEXT PRIMARY KEY,
  sha256     TEXT NOT NULL REFERENCES sample_files (sha256),
  machine_id TEXT NOT NULL,
  path       TEXT NOT NULL,
  requestor  TEXT NOT NULL,
  collected  INTEGER NOT NULL
) STRICT;
CREATE INDEX file_collections_by_sha256 ON file_collections (sha256, collected);

-- sha256 references nothing: an analysis may be requested before its sample is collected.
CREATE TABLE deep_analyses (
  id                TEXT PRIMARY KEY,
  sha256            TEXT NOT NULL,
  status            TEXT NOT NULL,
  requestor         TEXT NOT NULL,
  comment           TEXT NOT NULL,
  collect_action_id TEXT NOT NULL,
  stage             TEXT NOT NULL,
  verdict           TEXT NOT NULL,
  report_json       TEXT NOT NULL,
  error             TEXT NOT NULL,
  requested         INTEGER NOT NULL,
  updated           INTEGER NOT NULL
) STRICT;
CREATE INDEX deep_analyses_by_sha256 ON deep_analyses (sha256, requested);
CREATE INDEX deep_analyses_by_status ON deep_analyses (status, requested);
)sql"},
};

Result<int64_t> NewestApplied(Db& db) {
  QUELL_ASSIGN_OR_RETURN(Statement stmt,
                         db.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
  QUELL_RETURN_IF_ERROR(stmt.Step().status());
  return stmt.Int();
}

Result<bool> IsApplied(Db& db, int version) {
  QUELL_ASSIGN_OR_RETURN(
      Statement stmt, db.Prepare("SELECT 1 FROM schema_migrations WHERE version = ?", version));
  return stmt.Step();
}

}  // namespace

std::span<const Migration> SchemaMigrations() { return kMigrations; }

Status ApplyMigrations(Db& db, std::span<const Migration> migrations, UnixMillis now) {
  QUELL_RETURN_IF_ERROR(
      db.Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
              "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT"));

  int known = migrations.empty() ? 0 : migrations.back().version;
  QUELL_ASSIGN_OR_RETURN(int64_t found, NewestApplied(db));
  if (found > known) {
    return FailedPrecondition("database schema version " + std::to_string(found) +
                              " is newer than this binary supports (" + std::to_string(known) +
                              "); run a newer Quell");
  }

  for (const Migration& m : migrations) {
    QUELL_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
    QUELL_ASSIGN_OR_RETURN(bool applied, IsApplied(db, m.version));
    if (applied) continue;  // the transaction rolls back; nothing was written
    std::string context = "schema migration " + std::to_string(m.version);
    QUELL_RETURN_IF_ERROR(db.Exec(std::string(m.sql)).WithContext(context));
    QUELL_RETURN_IF_ERROR(
        db.Run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", m.version, now)
            .WithContext(context));
    QUELL_RETURN_IF_ERROR(tx.Commit().WithContext(context));
    Logger("server.store")->info("applied {}", context);
  }
  return Status::Ok();
}

}  // namespace quell::server::sqlite
