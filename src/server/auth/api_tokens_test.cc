#include "server/auth/api_tokens.h"

#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server {
namespace {

class ApiTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::move(OpenSqliteStore(dir_ + "/q.db")).value();
  }
  quell::testing::TempDir temp_dir_;  // declared first: removed after everything using it
  std::string dir_ = temp_dir_.path();
  std::unique_ptr<Store> store_;
  FakeClock clock_;
};

TEST_F(ApiTokensTest, CreatedSecretAuthenticatesWithItsRole) {
  auto created = CreateApiToken(*store_, clock_, "alice", Role::kResponder);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->secret.rfind("qk_", 0), 0u);
  EXPECT_EQ(created->token.secret_sha256.find(created->secret), std::string::npos);
  auto token = AuthenticateBearer(*store_, "Bearer " + created->secret);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->name, "alice");
  EXPECT_EQ(token->role, Role::kResponder);
}

TEST_F(ApiTokensTest, BadHeadersAreUnauthenticated) {
  auto created = CreateApiToken(*store_, clock_, "alice", Role::kAdmin);
  for (std::string header : {std::string(""), std::string("Basic abc"), std::string("Bearer "),
                             std::string("Bearer qk_nope"), "bearer " + created->secret}) {
    auto r = AuthenticateBearer(*store_, header);
    EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << header;
  }
}

TEST_F(ApiTokensTest, RolesAreOrdered) {
  EXPECT_TRUE(RoleAllows(Role::kAdmin, Role::kResponder));
  EXPECT_TRUE(RoleAllows(Role::kResponder, Role::kResponder));
  EXPECT_FALSE(RoleAllows(Role::kViewer, Role::kResponder));
  EXPECT_FALSE(RoleAllows(Role::kResponder, Role::kAdmin));
}

}  // namespace
}  // namespace quell::server
