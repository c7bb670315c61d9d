#include "server/store/sqlite/db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

namespace quell::server::sqlite {
namespace {

// How long a statement waits for another connection's write lock before failing with
// Unavailable. Writes are short, so this is only reached when something is badly stuck.
constexpr int kBusyTimeoutMs = 5000;

Status SqliteStatus(sqlite3* db, int rc) {
  std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
      return AlreadyExists(std::move(message));
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return FailedPrecondition(std::move(message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(std::move(message));
    case SQLITE_FULL:
      return ResourceExhausted(std::move(message));
    default:
      return Internal("sqlite: " + message);
  }
}

}  // namespace

// ---- Statement ----

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      next_param_(other.next_param_),
      next_column_(other.next_column_),
      bind_error_(other.bind_error_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    next_param_ = other.next_param_;
    next_column_ = other.next_column_;
    bind_error_ = other.bind_error_;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::Check(int rc) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}
void Statement::BindInt(int64_t v) { Check(sqlite3_bind_int64(stmt_, next_param_++, v)); }
void Statement::BindNull() { Check(sqlite3_bind_null(stmt_, next_param_++)); }
void Statement::BindText(std::string_view v) {
  Check(
      sqlite3_bind_text64(stmt_, next_param_++, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

Result<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) return SqliteStatus(db_, bind_error_);
  next_column_ = 0;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(db_, rc);
}

Status Statement::Run() {
  QUELL_ASSIGN_OR_RETURN(bool row, Step());
  return row ? Internal("sqlite: statement returned a row where none was expected") : Status::Ok();
}

int64_t Statement::Int() { return sqlite3_column_int64(stmt_, next_column_++); }

std::optional<int64_t> Statement::OptionalInt() {
  if (sqlite3_column_type(stmt_, next_column_) == SQLITE_NULL) {
    ++next_column_;
    return std::nullopt;
  }
  return Int();
}

std::string Statement::Text() {
  int column = next_column_++;
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  return text != nullptr ? std::string(text, sqlite3_column_bytes(stmt_, column)) : std::string();
}

// ---- Db ----

Result<Db> Db::Open(const std::string& path) {
  // Created here rather than by SQLite so that the file (and the -wal/-shm files SQLite
  // derives from it) is private to the owner from the first byte on.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("open " + path);
  ::close(fd);

  sqlite3* handle = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  Db db(handle);  // owns the handle even when opening failed
  if (rc != SQLITE_OK) return SqliteStatus(handle, rc).WithContext("open " + path);
  sqlite3_extended_result_codes(handle, 1);
  sqlite3_busy_timeout(handle, kBusyTimeoutMs);
  QUELL_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
                            .WithContext("configure " + path));
  return db;
}

Db::Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Db::~Db() { sqlite3_close_v2(db_); }

Status Db::Exec(const std::string& sql) {
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : SqliteStatus(db_, rc);
}

Result<Statement> Db::PrepareRaw(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc);
  return Statement(db_, stmt);
}

int64_t Db::Changes() const { return sqlite3_changes64(db_); }

// ---- Transaction ----

Result<Transaction> Transaction::Begin(Db& db) {
  QUELL_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  Status status = db_->Exec("COMMIT");
  if (status.ok()) db_ = nullptr;  // on failure the destructor rolls back
  return status;
}

std::string Placeholders(int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) s += (i > 1 ? ", ?" : "?") + std::to_string(i);
  return s;
}

}  // namespace quell::server::sqlite
