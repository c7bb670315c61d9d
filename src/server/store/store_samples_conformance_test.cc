// The Store suite for collected files and deep analyses. Written against the interface only,
// like store_conformance_test.cc; every implementation joins the INSTANTIATE_TEST_SUITE_P at
// the bottom.

#include <gtest/gtest.h>

#include <functional>

#include "common/testing/temp_dir.h"
#include "server/store/store_factory_testing.h"
#include "server/store/store.h"

namespace quell::server {
namespace {

using testing::StoreFactory;

constexpr UnixMillis kT0 = 1'700'000'000'000;

std::string Hash(char digit, size_t length) { return std::string(length, digit); }

SampleFile MakeSample(char digit, UnixMillis collected, const std::string& file_name = "evil.bin",
                      uint64_t size = 4096) {
  return {.sha256 = Hash(digit, 64),
          .sha1 = Hash(digit, 40),
          .md5 = Hash(digit, 32),
          .size = size,
          .file_name = file_name,
          .first_collected = collected,
          .last_collected = collected};
}

FileCollection MakeCollection(const SampleFile& file, const std::string& action_id,
                              UnixMillis collected, const std::string& machine_id = "dev-1") {
  return {.sha256 = file.sha256,
          .action_id = action_id,
          .machine_id = machine_id,
          .path = "/tmp/" + file.file_name,
          .requestor = "alice",
          .collected = collected};
}

DeepAnalysis MakeAnalysis(const std::string& id, const std::string& sha256, UnixMillis requested,
                          ActionStatus status = ActionStatus::kPending) {
  return {.id = id,
          .sha256 = sha256,
          .status = status,
          .requestor = "alice",
          .comment = "looks odd",
          .collect_action_id = "collect-" + id,
          .stage = "waiting for the file",
          .verdict = "",
          .report_json = "",
          .error = "",
          .requested = requested,
          .updated = requested};
}

std::vector<std::string> ActionIds(const std::vector<FileCollection>& collections) {
  std::vector<std::string> ids;
  for (const FileCollection& c : collections) ids.push_back(c.action_id);
  return ids;
}

std::vector<std::string> Ids(const std::vector<DeepAnalysis>& analyses) {
  std::vector<std::string> ids;
  for (const DeepAnalysis& a : analyses) ids.push_back(a.id);
  return ids;
}

class StoreSamplesTest : public ::testing::TestWithParam<StoreFactory> {
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

  // Records a collection of `file` at `collected`, as the server does when a CollectFile
  // action's upload arrives.
  void Collect(SampleFile file, const std::string& action_id, UnixMillis collected) {
    file.first_collected = collected;
    file.last_collected = collected;
    Status status = store().RecordFileCollection(file, MakeCollection(file, action_id, collected));
    ASSERT_TRUE(status.ok()) << action_id << ": " << status.ToString();
  }

  quell::testing::TempDir temp_dir_;
  std::string dir_ = temp_dir_.path();
  std::unique_ptr<Store> store_;
};

// ---- collected files ----

TEST_P(StoreSamplesTest, RecordThenGetReturnsEveryField) {
  SampleFile file = MakeSample('c', kT0, "payload.elf", 3'000'000'000);
  FileCollection collection = MakeCollection(file, "act-1", kT0, "dev-7");
  ASSERT_TRUE(store().RecordFileCollection(file, collection).ok());

  auto got = store().GetSampleFile(file.sha256);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, file);
  auto collections = store().ListFileCollections(file.sha256);
  ASSERT_TRUE(collections.ok()) << collections.status().ToString();
  EXPECT_EQ(*collections, std::vector<FileCollection>{collection});
}

TEST_P(StoreSamplesTest, SecondCollectionKeepsFirstCollectedAndNameButMovesLastCollected) {
  Collect(MakeSample('a', kT0, "first-name.bin", 100), "act-1", kT0);

  // The same content found later under another name, with its other hashes and size as
  // computed this time (they replace the stored ones).
  SampleFile again = MakeSample('a', kT0 + 500, "second-name.bin", 200);
  again.sha1 = Hash('e', 40);
  again.md5 = Hash('f', 32);
  ASSERT_TRUE(
      store().RecordFileCollection(again, MakeCollection(again, "act-2", kT0 + 500)).ok());

  auto got = store().GetSampleFile(again.sha256);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->file_name, "first-name.bin");
  EXPECT_EQ(got->first_collected, kT0);
  EXPECT_EQ(got->last_collected, kT0 + 500);
  EXPECT_EQ(got->sha1, Hash('e', 40));
  EXPECT_EQ(got->md5, Hash('f', 32));
  EXPECT_EQ(got->size, 200u);
  EXPECT_EQ(ActionIds(*store().ListFileCollections(again.sha256)),
            (std::vector<std::string>{"act-2", "act-1"}));
}

TEST_P(StoreSamplesTest, OlderCollectionDoesNotMoveLastCollectedBackwards) {
  Collect(MakeSample('a', kT0), "act-new", kT0 + 1000);
  // An upload that finished late, for a collection made earlier.
  Collect(MakeSample('a', kT0), "act-old", kT0 + 10);

  auto got = store().GetSampleFile(Hash('a', 64));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->first_collected, kT0 + 1000);  // kept, as the contract says
  EXPECT_EQ(got->last_collected, kT0 + 1000);
  // The older collection is still recorded, and listed after the newer one.
  EXPECT_EQ(ActionIds(*store().ListFileCollections(Hash('a', 64))),
            (std::vector<std::string>{"act-new", "act-old"}));
}

TEST_P(StoreSamplesTest, SameActionTwiceIsAlreadyExistsAndChangesNothing) {
  SampleFile file = MakeSample('b', kT0, "x.bin", 10);
  FileCollection collection = MakeCollection(file, "act-1", kT0);
  ASSERT_TRUE(store().RecordFileCollection(file, collection).ok());

  SampleFile retried = MakeSample('b', kT0 + 900, "x.bin", 99);
  FileCollection retried_collection = MakeCollection(retried, "act-1", kT0 + 900, "dev-2");
  EXPECT_EQ(store().RecordFileCollection(retried, retried_collection).code(),
            StatusCode::kAlreadyExists);

  EXPECT_EQ(*store().GetSampleFile(file.sha256), file);
  EXPECT_EQ(*store().ListFileCollections(file.sha256), std::vector<FileCollection>{collection});
}

TEST_P(StoreSamplesTest, SameActionForAnotherFileIsAlreadyExists) {
  Collect(MakeSample('a', kT0), "act-1", kT0);
  SampleFile other = MakeSample('d', kT0 + 1);
  EXPECT_EQ(store().RecordFileCollection(other, MakeCollection(other, "act-1", kT0 + 1)).code(),
            StatusCode::kAlreadyExists);
  // Nothing of the refused call is kept: the other file is not known.
  EXPECT_EQ(store().GetSampleFile(other.sha256).status().code(), StatusCode::kNotFound);
  auto list = store().ListFileCollections(other.sha256);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
}

TEST_P(StoreSamplesTest, CollectionsAreListedNewestFirstAndOnlyForThatFile) {
  Collect(MakeSample('a', kT0), "act-2", kT0 + 200);
  Collect(MakeSample('a', kT0), "act-1", kT0 + 100);
  Collect(MakeSample('b', kT0), "act-other", kT0 + 250);
  Collect(MakeSample('a', kT0), "act-3", kT0 + 300);
  Collect(MakeSample('a', kT0), "act-0", kT0);

  auto list = store().ListFileCollections(Hash('a', 64));
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(ActionIds(*list), (std::vector<std::string>{"act-3", "act-2", "act-1", "act-0"}));
  EXPECT_EQ(ActionIds(*store().ListFileCollections(Hash('b', 64))),
            std::vector<std::string>{"act-other"});
}

TEST_P(StoreSamplesTest, UnknownSampleIsNotFoundAndHasNoCollections) {
  EXPECT_EQ(store().GetSampleFile(Hash('9', 64)).status().code(), StatusCode::kNotFound);
  Collect(MakeSample('a', kT0), "act-1", kT0);
  EXPECT_EQ(store().GetSampleFile(Hash('9', 64)).status().code(), StatusCode::kNotFound);
  // Only the SHA-256 names a sample; its other hashes do not.
  EXPECT_EQ(store().GetSampleFile(Hash('a', 40)).status().code(), StatusCode::kNotFound);
  auto list = store().ListFileCollections(Hash('9', 64));
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
}

// ---- deep analyses ----

TEST_P(StoreSamplesTest, PutThenGetAnalysisReturnsEveryField) {
  DeepAnalysis analysis = MakeAnalysis("da-1", Hash('a', 64), kT0, ActionStatus::kSucceeded);
  analysis.stage = "done";
  analysis.verdict = "malicious";
  analysis.report_json = R"({"processes":[{"pid":1,"cmd":"sh -c 'x'"}]})";
  analysis.error = "partial: network capture lost";
  analysis.updated = kT0 + 60'000;
  ASSERT_TRUE(store().PutDeepAnalysis(analysis).ok());
  auto got = store().GetDeepAnalysis("da-1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, analysis);
}

TEST_P(StoreSamplesTest, GetOfUnknownAnalysisIsNotFound) {
  EXPECT_EQ(store().GetDeepAnalysis("da-1").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store().PutDeepAnalysis(MakeAnalysis("da-1", Hash('a', 64), kT0)).ok());
  EXPECT_EQ(store().GetDeepAnalysis("da-2").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreSamplesTest, PutReplacesEveryFieldOfTheSameId) {
  ASSERT_TRUE(store().PutDeepAnalysis(MakeAnalysis("da-1", Hash('a', 64), kT0)).ok());
  DeepAnalysis replaced{.id = "da-1",
                        .sha256 = Hash('b', 64),
                        .status = ActionStatus::kFailed,
                        .requestor = "bob",
                        .comment = "second look",
                        .collect_action_id = "",
                        .stage = "",
                        .verdict = "suspicious",
                        .report_json = "{}",
                        .error = "sandbox timed out",
                        .requested = kT0 + 5,
                        .updated = kT0 + 99};
  ASSERT_TRUE(store().PutDeepAnalysis(replaced).ok());
  EXPECT_EQ(*store().GetDeepAnalysis("da-1"), replaced);
  // One analysis, now filed under its new sample only, and no longer unfinished.
  EXPECT_TRUE(store().ListDeepAnalyses(Hash('a', 64))->empty());
  EXPECT_EQ(*store().ListDeepAnalyses(Hash('b', 64)), std::vector<DeepAnalysis>{replaced});
  EXPECT_TRUE(store().ListUnfinishedDeepAnalyses()->empty());
}

TEST_P(StoreSamplesTest, AnalysesOfASampleAreListedNewestRequestFirstTiesById) {
  for (auto [id, requested] : std::vector<std::pair<std::string, UnixMillis>>{
           {"da-b", kT0 + 100}, {"da-old", kT0}, {"da-a", kT0 + 100}, {"da-new", kT0 + 500}}) {
    ASSERT_TRUE(store().PutDeepAnalysis(MakeAnalysis(id, Hash('a', 64), requested)).ok()) << id;
  }
  ASSERT_TRUE(store().PutDeepAnalysis(MakeAnalysis("da-other", Hash('b', 64), kT0 + 300)).ok());

  auto list = store().ListDeepAnalyses(Hash('a', 64));
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(Ids(*list), (std::vector<std::string>{"da-new", "da-a", "da-b", "da-old"}));
  EXPECT_EQ(Ids(*store().ListDeepAnalyses(Hash('b', 64))),
            std::vector<std::string>{"da-other"});
  auto none = store().ListDeepAnalyses(Hash('c', 64));
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreSamplesTest, UnfinishedListsOnlyPendingAndInProgressOldestFirst) {
  struct Row {
    const char* id;
    char sample;
    UnixMillis requested;
    ActionStatus status;
  };
  for (const Row& r : std::vector<Row>{
           {"da-running", 'a', kT0 + 300, ActionStatus::kInProgress},
           {"da-done", 'a', kT0 + 10, ActionStatus::kSucceeded},
           {"da-queued-late", 'b', kT0 + 400, ActionStatus::kPending},
           {"da-failed", 'b', kT0 + 20, ActionStatus::kFailed},
           {"da-queued-early", 'c', kT0 + 100, ActionStatus::kPending},
           {"da-timed-out", 'c', kT0 + 30, ActionStatus::kTimeOut},
           {"da-cancelled", 'c', kT0 + 40, ActionStatus::kCancelled}}) {
    ASSERT_TRUE(
        store().PutDeepAnalysis(MakeAnalysis(r.id, Hash(r.sample, 64), r.requested, r.status))
            .ok())
        << r.id;
  }

  auto list = store().ListUnfinishedDeepAnalyses();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(Ids(*list),
            (std::vector<std::string>{"da-queued-early", "da-running", "da-queued-late"}));
  EXPECT_EQ((*list)[1].status, ActionStatus::kInProgress);

  // Finishing one takes it off the list.
  DeepAnalysis finished = (*list)[1];
  finished.status = ActionStatus::kSucceeded;
  finished.verdict = "noThreatsFound";
  ASSERT_TRUE(store().PutDeepAnalysis(finished).ok());
  EXPECT_EQ(Ids(*store().ListUnfinishedDeepAnalyses()),
            (std::vector<std::string>{"da-queued-early", "da-queued-late"}));
}

TEST_P(StoreSamplesTest, SamplesAndAnalysesSurviveReopening) {
  SampleFile file = MakeSample('f', kT0, "kept.bin", 77);
  FileCollection collection = MakeCollection(file, "act-1", kT0);
  ASSERT_TRUE(store().RecordFileCollection(file, collection).ok());
  DeepAnalysis analysis = MakeAnalysis("da-1", file.sha256, kT0 + 1, ActionStatus::kInProgress);
  ASSERT_TRUE(store().PutDeepAnalysis(analysis).ok());

  Open();
  EXPECT_EQ(*store().GetSampleFile(file.sha256), file);
  EXPECT_EQ(*store().ListFileCollections(file.sha256), std::vector<FileCollection>{collection});
  EXPECT_EQ(*store().GetDeepAnalysis("da-1"), analysis);
  EXPECT_EQ(*store().ListUnfinishedDeepAnalyses(), std::vector<DeepAnalysis>{analysis});
  // The action is still known after the reopen: recording it again is refused.
  EXPECT_EQ(store().RecordFileCollection(file, collection).code(), StatusCode::kAlreadyExists);
}

INSTANTIATE_TEST_SUITE_P(
    Stores, StoreSamplesTest,
    testing::AllStores(), testing::StoreName);

}  // namespace
}  // namespace quell::server
