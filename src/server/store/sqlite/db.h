// A small move-only RAII layer over the sqlite3 C API, private to the SQLite store. SQL text
// is always constant; values travel only as bound parameters.
//
// Thread-safety: none. One Db (and its statements) is used by one thread at a time; the
// store serializes access with its own mutex.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace quell::server::sqlite {

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};

// A prepared statement. Bind() binds values to parameters 1, 2, ... in call order (use
// numbered parameters, ?1 ?2, to refer to one value twice). After Step() returned true, the
// column readers return the current row's columns left to right.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  // Accepts strings, integers, bool (as 0/1), and std::optional of those or std::nullopt,
  // where an empty optional binds NULL.
  template <typename... Args>
  Statement& Bind(const Args&... args) {
    (BindOne(args), ...);
    return *this;
  }

  Result<bool> Step();  // true: a row is ready; false: no more rows
  Status Run();         // steps once and expects no row

  int64_t Int();
  bool Bool() { return Int() != 0; }
  std::optional<int64_t> OptionalInt();
  std::string Text();

 private:
  friend class Db;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  template <typename T>
  void BindOne(const T& v) {
    if constexpr (std::is_same_v<T, std::nullopt_t>) {
      BindNull();
    } else if constexpr (IsOptional<T>::value) {
      v ? BindOne(*v) : BindNull();
    } else if constexpr (std::is_integral_v<T>) {
      BindInt(static_cast<int64_t>(v));
    } else {
      BindText(std::string_view(v));
    }
  }
  void BindInt(int64_t v);
  void BindText(std::string_view v);
  void BindNull();
  void Check(int rc);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int next_param_ = 1;
  int next_column_ = 0;
  int bind_error_ = 0;  // first failed bind, reported by Step()
};

class Db {
 public:
  // Opens or creates the database file (created with mode 0600), with extended result codes,
  // WAL journaling, foreign keys and a busy timeout so that other processes writing the same
  // file make us wait instead of fail.
  static Result<Db> Open(const std::string& path);

  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  ~Db();

  // Runs constant SQL, possibly several statements. Never for SQL that carries values.
  Status Exec(const std::string& sql);

  template <typename... Args>
  Result<Statement> Prepare(std::string_view sql, const Args&... args) {
    QUELL_ASSIGN_OR_RETURN(Statement stmt, PrepareRaw(sql));
    stmt.Bind(args...);
    return stmt;
  }

  // Prepares, binds and runs a statement that returns no rows.
  template <typename... Args>
  Status Run(std::string_view sql, const Args&... args) {
    QUELL_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql, args...));
    return stmt.Run();
  }

  // Rows changed by the last INSERT, UPDATE or DELETE on this connection.
  int64_t Changes() const;

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  Result<Statement> PrepareRaw(std::string_view sql);

  sqlite3* db_;
};

// A write transaction: BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy
// timeout), so a transaction never fails half-way because another writer got there first.
// Rolled back on destruction unless committed.
class Transaction {
 public:
  static Result<Transaction> Begin(Db& db);
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;  // null once committed or rolled back
};

// "?1, ?2, ..., ?n" for statements whose placeholders follow a column list.
std::string Placeholders(int n);

}  // namespace quell::server::sqlite
