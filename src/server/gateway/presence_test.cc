#include "server/gateway/presence.h"

#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server {
namespace {

class PresenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(OpenSqliteStore(dir_ / "q.db")).value();
    for (const char* id : {"a", "b"}) {
      ASSERT_TRUE(store_->CreateDevice({.id = id, .last_seen = 100}).ok());
    }
  }
  quell::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(PresenceTest, KeepsTheNewestTimeUntilFlushed) {
  Presence presence;
  presence.Record("a", 500);
  presence.Record("a", 300);  // out of order: the newest wins
  presence.Record("b", 200);
  EXPECT_EQ(presence.Pending("a"), 500);
  EXPECT_EQ(store_->GetDevice("a")->last_seen, 100);  // nothing written yet
  ASSERT_TRUE(presence.Flush(*store_).ok());
  EXPECT_EQ(store_->GetDevice("a")->last_seen, 500);
  EXPECT_EQ(store_->GetDevice("b")->last_seen, 200);
  EXPECT_FALSE(presence.Pending("a").has_value());
  EXPECT_TRUE(presence.Flush(*store_).ok());  // nothing pending is fine
}

TEST_F(PresenceTest, UnknownDevicesDoNotBlockTheOthers) {
  Presence presence;
  presence.Record("gone", 400);
  presence.Record("a", 400);
  ASSERT_TRUE(presence.Flush(*store_).ok());
  EXPECT_EQ(store_->GetDevice("a")->last_seen, 400);
}

}  // namespace
}  // namespace quell::server
