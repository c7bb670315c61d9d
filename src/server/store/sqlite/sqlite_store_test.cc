// SQLite-only behaviour: persistence across reopen, migrations, and several connections on
// one file. Behaviour every Store shares is in store_conformance_test.cc.
#include "server/store/sqlite/sqlite_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "common/testing/temp_dir.h"
#include "server/store/sqlite/db.h"
#include "server/store/sqlite/migrations.h"

namespace quell::server {
namespace {

constexpr UnixMillis kT0 = 1'700'000'000'000;

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> Open() {
    auto store = OpenSqliteStore(path_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Rows of schema_migrations as versions, read through a separate connection.
  std::vector<int64_t> AppliedVersions() {
    auto db = sqlite::Db::Open(path_);
    EXPECT_TRUE(db.ok());
    auto stmt = db->Prepare("SELECT version FROM schema_migrations ORDER BY version");
    std::vector<int64_t> versions;
    while (stmt.ok() && stmt->Step().value()) versions.push_back(stmt->Int());
    return versions;
  }

  quell::testing::TempDir dir_;
  std::string path_ = dir_ / "quell.db";
};

TEST_F(SqliteStoreTest, ReopenKeepsAllData) {
  Device device{.id = "dev-1",
                .computer_dns_name = "h1",
                .ip_addresses = {"10.0.0.1"},
                .first_seen = kT0,
                .isolation = IsolationState::kFull};
  MachineAction action{.id = "act-1",
                       .type = "Isolate",
                       .status = ActionStatus::kInProgress,
                       .machine_id = "dev-1",
                       .creation_time = kT0,
                       .cancellation_time = kT0 + 1};
  ApiToken token{.id = "tok-1", .name = "cli", .role = Role::kAdmin, .secret_sha256 = "h"};
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateDevice(device).ok());
    ASSERT_TRUE(store->InsertAction(action).ok());
    ASSERT_TRUE(store->CreateApiToken(token).ok());
    ASSERT_TRUE(store
                    ->CreateEnrollmentToken(
                        {.id = "enr-1", .secret_sha256 = "e", .uses_left = 1, .expires = kT0 + 10})
                    .ok());
    ASSERT_TRUE(store->AppendAudit({.time = kT0, .actor = "system", .target = "dev-1"}).ok());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->GetDevice("dev-1").value(), device);
  EXPECT_EQ(store->GetAction("act-1").value(), action);
  EXPECT_EQ(store->FindApiTokenBySecretHash("h").value(), token);
  EXPECT_TRUE(store->ConsumeEnrollmentToken("e", kT0).ok());
  EXPECT_EQ(store->ConsumeEnrollmentToken("e", kT0).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(store->ListAudit({.target = "dev-1"})->size(), 1u);
}

TEST_F(SqliteStoreTest, MigrationsAreRecordedOnceAndNotRerun) {
  std::vector<int64_t> all;
  for (const sqlite::Migration& m : sqlite::SchemaMigrations()) all.push_back(m.version);
  ASSERT_NE(Open(), nullptr);
  EXPECT_EQ(AppliedVersions(), all);
  // A second run of migration 1 would fail on CREATE TABLE; reopening must skip it.
  ASSERT_NE(Open(), nullptr);
  EXPECT_EQ(AppliedVersions(), all);
}

TEST_F(SqliteStoreTest, OnlyMissingMigrationsAreApplied) {
  // Migration 1 inserts a row: running it twice would leave two.
  constexpr sqlite::Migration kSteps[] = {
      {1, "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);"},
      {2, "INSERT INTO t VALUES (2);"},
  };
  auto db = sqlite::Db::Open(path_);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE(sqlite::ApplyMigrations(*db, std::span(kSteps, 1), kT0).ok());
  ASSERT_TRUE(sqlite::ApplyMigrations(*db, kSteps, kT0 + 1).ok());
  ASSERT_TRUE(sqlite::ApplyMigrations(*db, kSteps, kT0 + 2).ok());

  auto rows = db->Prepare("SELECT group_concat(v) FROM t");
  ASSERT_TRUE(rows.ok() && rows->Step().value());
  EXPECT_EQ(rows->Text(), "1,2");
  auto applied =
      db->Prepare("SELECT group_concat(version || ':' || applied_at) FROM schema_migrations");
  ASSERT_TRUE(applied.ok() && applied->Step().value());
  EXPECT_EQ(applied->Text(), "1:" + std::to_string(kT0) + ",2:" + std::to_string(kT0 + 1));
}

TEST_F(SqliteStoreTest, FailedMigrationLeavesNoTrace) {
  constexpr sqlite::Migration kSteps[] = {
      {1, "CREATE TABLE t (v INTEGER);"},
      {2, "CREATE TABLE u (v INTEGER); INSERT INTO missing VALUES (1);"},
  };
  auto db = sqlite::Db::Open(path_);
  ASSERT_TRUE(db.ok());
  EXPECT_FALSE(sqlite::ApplyMigrations(*db, kSteps, kT0).ok());
  auto stmt = db->Prepare(
      "SELECT (SELECT count(*) FROM sqlite_schema WHERE name = 'u'), "
      "(SELECT group_concat(version) FROM schema_migrations)");
  ASSERT_TRUE(stmt.ok() && stmt->Step().value());
  EXPECT_EQ(stmt->Int(), 0);
  EXPECT_EQ(stmt->Text(), "1");
}

TEST_F(SqliteStoreTest, DatabaseFromNewerVersionIsRefused) {
  ASSERT_NE(Open(), nullptr);
  int64_t newer = sqlite::SchemaMigrations().back().version + 1;
  {
    auto db = sqlite::Db::Open(path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(
        db->Run("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", newer, kT0)
            .ok());
  }
  auto store = OpenSqliteStore(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos) << store.status().message();
}

// Two stores on one file stand for the server and a CLI process writing concurrently:
// busy_timeout and write transactions must keep the token's use count exact.
TEST_F(SqliteStoreTest, TwoConnectionsShareOneEnrollmentToken) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->CreateEnrollmentToken(
                   {.id = "enr-1", .secret_sha256 = "e", .uses_left = 20, .expires = kT0 + 10})
                  .ok());
  std::atomic<int> granted = 0;
  std::atomic<int> failed = 0;
  auto consume = [&](Store* store) {
    for (int i = 0; i < 15; ++i) {
      Status status = store->ConsumeEnrollmentToken("e", kT0);
      if (status.ok()) {
        ++granted;
      } else if (status.code() != StatusCode::kPermissionDenied) {
        ++failed;
      }
    }
  };
  std::thread ta(consume, a.get());
  std::thread tb(consume, b.get());
  ta.join();
  tb.join();
  EXPECT_EQ(granted, 20);
  EXPECT_EQ(failed, 0);
}

TEST_F(SqliteStoreTest, DatabaseFileIsPrivate) {
  ASSERT_NE(Open(), nullptr);
  EXPECT_EQ(std::filesystem::status(path_).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace
}  // namespace quell::server
