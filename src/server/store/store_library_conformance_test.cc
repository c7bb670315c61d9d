// The Store suite for the live response library. Written against the interface only, like
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

LibraryFile MakeFile(const std::string& name, char hash_digit = 'a', uint64_t size = 1234) {
  return {.name = name,
          .sha256 = std::string(64, hash_digit),
          .size = size,
          .description = "collects " + name,
          .has_parameters = true,
          .parameters_description = "-v: verbose",
          .created_by = "alice",
          .creation_time = kT0,
          .last_updated_by = "bob",
          .last_updated_time = kT0 + 7};
}

std::vector<std::string> Names(const std::vector<LibraryFile>& files) {
  std::vector<std::string> names;
  for (const LibraryFile& f : files) names.push_back(f.name);
  return names;
}

class StoreLibraryTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    Open();
    ASSERT_TRUE(store_ != nullptr);
  }

  void Open() {
    store_.reset();  // one open connection at a time
    auto store = GetParam().open(dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  Store& store() { return *store_; }

  std::vector<std::string> AuditOperations() {
    std::vector<std::string> ops;
    auto entries = store().ListAudit({});
    EXPECT_TRUE(entries.ok()) << entries.status().ToString();
    if (!entries.ok()) return ops;
    for (const AuditEntry& e : *entries) ops.push_back(e.operation + ":" + e.target);
    return ops;
  }

  quell::testing::TempDir temp_dir_;
  std::string dir_ = temp_dir_.path();
  std::unique_ptr<Store> store_;
};

TEST_P(StoreLibraryTest, PutThenGetReturnsEveryField) {
  LibraryFile file = MakeFile("collect.sh", 'c', 3'000'000'000);
  ASSERT_TRUE(store().PutLibraryFile(file).ok());
  auto got = store().GetLibraryFile("collect.sh");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, file);

  LibraryFile plain = MakeFile("plain.bin");
  plain.has_parameters = false;
  plain.description.clear();
  plain.parameters_description.clear();
  ASSERT_TRUE(store().PutLibraryFile(plain).ok());
  EXPECT_EQ(*store().GetLibraryFile("plain.bin"), plain);
}

TEST_P(StoreLibraryTest, GetOfUnknownNameIsNotFound) {
  ASSERT_TRUE(store().PutLibraryFile(MakeFile("a.sh")).ok());
  auto got = store().GetLibraryFile("b.sh");
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_NE(got.status().message().find("b.sh"), std::string::npos);
  // Names are exact: no case folding.
  EXPECT_EQ(store().GetLibraryFile("A.sh").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreLibraryTest, PutOfSameNameReplacesEveryField) {
  ASSERT_TRUE(store().PutLibraryFile(MakeFile("tool", 'a', 10)).ok());
  LibraryFile replaced = MakeFile("tool", 'b', 20);
  replaced.description = "new version";
  replaced.has_parameters = false;
  replaced.created_by = "carol";
  replaced.last_updated_time = kT0 + 99;
  ASSERT_TRUE(store().PutLibraryFile(replaced).ok());
  EXPECT_EQ(*store().GetLibraryFile("tool"), replaced);
  EXPECT_EQ(*store().ListLibraryFiles(), std::vector<LibraryFile>{replaced});
}

TEST_P(StoreLibraryTest, ListIsOrderedByName) {
  for (const char* name : {"zeta.sh", "Alpha.py", "a-1.sh", "a.sh", "b"}) {
    ASSERT_TRUE(store().PutLibraryFile(MakeFile(name)).ok()) << name;
  }
  auto list = store().ListLibraryFiles();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  // Byte order: uppercase before lowercase, '-' before '.'.
  EXPECT_EQ(Names(*list),
            (std::vector<std::string>{"Alpha.py", "a-1.sh", "a.sh", "b", "zeta.sh"}));
}

TEST_P(StoreLibraryTest, EmptyLibraryListsEmpty) {
  auto list = store().ListLibraryFiles();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
}

TEST_P(StoreLibraryTest, DeleteRemovesOnlyThatFile) {
  ASSERT_TRUE(store().PutLibraryFile(MakeFile("a.sh")).ok());
  ASSERT_TRUE(store().PutLibraryFile(MakeFile("b.sh")).ok());
  ASSERT_TRUE(store().DeleteLibraryFile("a.sh").ok());
  EXPECT_EQ(store().GetLibraryFile("a.sh").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Names(*store().ListLibraryFiles()), std::vector<std::string>{"b.sh"});
  EXPECT_EQ(store().DeleteLibraryFile("a.sh").code(), StatusCode::kNotFound);
}

TEST_P(StoreLibraryTest, AuditIsWrittenWithTheChangeAndNotForAMissingFile) {
  AuditEntry uploaded{.time = kT0, .actor = "admin", .operation = "library.uploaded",
                      .target = "a.sh"};
  AuditEntry deleted{.time = kT0 + 1, .actor = "admin", .operation = "library.deleted",
                     .target = "a.sh"};
  ASSERT_TRUE(store().PutLibraryFile(MakeFile("a.sh"), &uploaded).ok());
  ASSERT_TRUE(store().DeleteLibraryFile("a.sh", &deleted).ok());
  AuditEntry missing = deleted;
  missing.target = "nope.sh";
  EXPECT_EQ(store().DeleteLibraryFile("nope.sh", &missing).code(), StatusCode::kNotFound);
  EXPECT_EQ(AuditOperations(),
            (std::vector<std::string>{"library.uploaded:a.sh", "library.deleted:a.sh"}));
}

TEST_P(StoreLibraryTest, FilesSurviveReopening) {
  LibraryFile file = MakeFile("kept.py", 'f', 77);
  ASSERT_TRUE(store().PutLibraryFile(file).ok());
  Open();
  EXPECT_EQ(*store().GetLibraryFile("kept.py"), file);
}

INSTANTIATE_TEST_SUITE_P(
    Stores, StoreLibraryTest,
    testing::AllStores(), testing::StoreName);

}  // namespace
}  // namespace quell::server
