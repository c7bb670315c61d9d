// The SQLite schema as an ordered list of versioned steps. A step is never edited once
// released: a schema change is a new step with the next version.
#pragma once

#include <span>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "server/store/sqlite/db.h"

namespace quell::server::sqlite {

struct Migration {
  int version;           // 1, 2, 3, ... in order
  std::string_view sql;  // one or more statements
};

// The steps this binary knows, oldest first.
std::span<const Migration> SchemaMigrations();

// Applies each step of `migrations` not yet recorded in the schema_migrations table (version,
// applied_at), each in its own transaction together with its record, so that a crash leaves
// the schema at a step boundary and concurrent openers do not apply a step twice.
// FailedPrecondition, with nothing changed, if the database records a version newer than the
// last of `migrations` (it was written by a newer Quell).
Status ApplyMigrations(Db& db, std::span<const Migration> migrations, UnixMillis now);

}  // namespace quell::server::sqlite
