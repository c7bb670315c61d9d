// The Store suite for action artifacts. Written against the interface only, like
// store_conformance_test.cc; every implementation joins the INSTANTIATE_TEST_SUITE_P at the
// bottom.

#include <gtest/gtest.h>

#include <functional>

#include "common/testing/temp_dir.h"
#include "server/store/store_factory_testing.h"
#include "server/store/store.h"

namespace quell::server {
namespace {

using testing::StoreFactory;

constexpr UnixMillis kT0 = 1'700'000'000'000;

ActionArtifact MakeArtifact(const std::string& action_id, const std::string& name,
                            char hash_digit = 'a', uint64_t size = 1234) {
  return {.action_id = action_id,
          .name = name,
          .sha256 = std::string(64, hash_digit),
          .size = size,
          .created = kT0 + 5};
}

std::vector<std::string> Names(const std::vector<ActionArtifact>& artifacts) {
  std::vector<std::string> names;
  for (const ActionArtifact& a : artifacts) names.push_back(a.action_id + "/" + a.name);
  return names;
}

class StoreArtifactsTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    Open();
    ASSERT_TRUE(store_ != nullptr);
    ASSERT_TRUE(store().CreateDevice({.id = "dev-1", .os_platform = "Linux"}).ok());
    for (const char* id : {"act-1", "act-2"}) {
      MachineAction action{.id = id,
                           .type = "CollectInvestigationPackage",
                           .requestor = "alice",
                           .machine_id = "dev-1",
                           .creation_time = kT0,
                           .last_update_time = kT0,
                           .expiration_time = kT0 + 1000};
      ASSERT_TRUE(store().InsertAction(action).ok()) << id;
    }
  }

  void Open() {
    store_.reset();  // one open connection at a time
    auto store = GetParam().open(dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  Store& store() { return *store_; }

  quell::testing::TempDir temp_dir_;
  std::string dir_ = temp_dir_.path();
  std::unique_ptr<Store> store_;
};

TEST_P(StoreArtifactsTest, PutThenGetReturnsEveryField) {
  ActionArtifact artifact = MakeArtifact("act-1", "package.zip", 'c', 3'000'000'000);
  ASSERT_TRUE(store().PutActionArtifact(artifact).ok());
  auto got = store().GetActionArtifact("act-1", "package.zip");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, artifact);
}

TEST_P(StoreArtifactsTest, PutForUnknownActionIsNotFoundAndStoresNothing) {
  EXPECT_EQ(store().PutActionArtifact(MakeArtifact("no-such-action", "out.txt")).code(),
            StatusCode::kNotFound);
  auto list = store().ListActionArtifacts("no-such-action");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
}

TEST_P(StoreArtifactsTest, GetOfUnknownNameIsNotFound) {
  ASSERT_TRUE(store().PutActionArtifact(MakeArtifact("act-1", "package.zip")).ok());
  EXPECT_EQ(store().GetActionArtifact("act-1", "other.zip").status().code(),
            StatusCode::kNotFound);
  // Names are per action: act-2 has no package.zip although act-1 does.
  EXPECT_EQ(store().GetActionArtifact("act-2", "package.zip").status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store().GetActionArtifact("no-such-action", "package.zip").status().code(),
            StatusCode::kNotFound);
}

TEST_P(StoreArtifactsTest, PutOfSameNameReplacesTheArtifact) {
  ASSERT_TRUE(store().PutActionArtifact(MakeArtifact("act-1", "out.txt", 'a', 10)).ok());
  ActionArtifact retried = MakeArtifact("act-1", "out.txt", 'b', 20);
  retried.created = kT0 + 99;
  ASSERT_TRUE(store().PutActionArtifact(retried).ok());
  EXPECT_EQ(*store().GetActionArtifact("act-1", "out.txt"), retried);
  auto list = store().ListActionArtifacts("act-1");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, std::vector<ActionArtifact>{retried});
}

TEST_P(StoreArtifactsTest, ListIsOrderedByNameAndHoldsOnlyThatAction) {
  for (const char* name : {"stdout.txt", "Autoruns.zip", "a-1.log", "a.log", "stderr.txt"}) {
    ASSERT_TRUE(store().PutActionArtifact(MakeArtifact("act-1", name)).ok()) << name;
  }
  ASSERT_TRUE(store().PutActionArtifact(MakeArtifact("act-2", "b.log")).ok());
  auto list = store().ListActionArtifacts("act-1");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  // Byte order: uppercase before lowercase, '-' before '.'.
  EXPECT_EQ(Names(*list), (std::vector<std::string>{"act-1/Autoruns.zip", "act-1/a-1.log",
                                                     "act-1/a.log", "act-1/stderr.txt",
                                                     "act-1/stdout.txt"}));
  EXPECT_EQ(Names(*store().ListActionArtifacts("act-2")),
            std::vector<std::string>{"act-2/b.log"});
}

TEST_P(StoreArtifactsTest, ActionWithoutArtifactsListsEmpty) {
  auto list = store().ListActionArtifacts("act-2");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
}

TEST_P(StoreArtifactsTest, ArtifactsSurviveReopening) {
  ActionArtifact artifact = MakeArtifact("act-2", "file.bin", 'f', 77);
  ASSERT_TRUE(store().PutActionArtifact(artifact).ok());
  Open();
  EXPECT_EQ(*store().GetActionArtifact("act-2", "file.bin"), artifact);
}

INSTANTIATE_TEST_SUITE_P(
    Stores, StoreArtifactsTest,
    testing::AllStores(), testing::StoreName);

}  // namespace
}  // namespace quell::server
