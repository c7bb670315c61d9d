#include "agent/state/identity_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

TEST(IdentityStoreTest, NotEnrolledUntilSaved) {
  testing::TempDir dir;
  IdentityStore store(dir / "identity");
  auto loaded = store.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
}

TEST(IdentityStoreTest, SavedIdentitySurvivesRestartWithPrivateFiles) {
  testing::TempDir dir;
  ASSERT_TRUE(IdentityStore(dir / "identity").Save({"dev-1", "KEY PEM", "CERT PEM"}).ok());

  auto loaded = IdentityStore(dir / "identity").Load();  // a new object: the agent restarted
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->device_id, "dev-1");
  EXPECT_EQ((*loaded)->key_pem, "KEY PEM");
  EXPECT_EQ((*loaded)->cert_pem, "CERT PEM");

  struct stat st {};
  ASSERT_EQ(::stat((dir / "identity/device.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir / "identity").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(IdentityStoreTest, RefusesIncompleteIdentity) {
  testing::TempDir dir;
  EXPECT_FALSE(IdentityStore(dir / "identity").Save({"dev-1", "", "CERT"}).ok());
  auto loaded = IdentityStore(dir / "identity").Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
}

}  // namespace
}  // namespace quell::agent
