// The embedded SQLite implementation of Store, the default. One database file holds all
// server state; other processes (e.g. `quell-server token create`) may write it while the
// server runs.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "server/store/store.h"

namespace quell::server {

// Opens the database file at `path`, creating it (mode 0600) if absent, and applies any
// schema migrations it lacks. The directory must exist. FailedPrecondition if the file was
// written by a newer Quell than this one; Unavailable if another process holds it locked
// for longer than the busy timeout.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

}  // namespace quell::server
