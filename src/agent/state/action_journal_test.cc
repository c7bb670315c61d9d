#include "agent/state/action_journal.h"

#include <gtest/gtest.h>

#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

quell::v1::ActionUpdate Final(const std::string& id) {
  quell::v1::ActionUpdate u;
  u.set_action_id(id);
  u.set_sequence(7);
  u.set_state(quell::v1::ACTION_STATE_SUCCEEDED);
  u.set_result_json(R"({"noop":true})");
  return u;
}

TEST(ActionJournalTest, RemembersStartedAndFinishedAcrossRestart) {
  testing::TempDir dir;
  FakeClock clock;
  {
    auto journal = ActionJournal::Open(dir.path(), clock).value();
    EXPECT_EQ(journal->Lookup("a1")->state, ActionJournal::State::kUnknown);
    ASSERT_TRUE(journal->MarkStarted("a1", "Isolate").ok());
    ASSERT_TRUE(journal->MarkStarted("a2", "DiagnosticNoop").ok());
    ASSERT_TRUE(journal->MarkFinished("a2", "DiagnosticNoop", Final("a2")).ok());
  }
  auto journal = ActionJournal::Open(dir.path(), clock).value();  // the agent restarted
  auto a1 = journal->Lookup("a1");
  ASSERT_TRUE(a1.ok());
  EXPECT_EQ(a1->state, ActionJournal::State::kStarted);  // crashed mid-run: runs again
  EXPECT_EQ(a1->type, "Isolate");
  auto a2 = journal->Lookup("a2");
  ASSERT_TRUE(a2.ok());
  ASSERT_EQ(a2->state, ActionJournal::State::kFinished);
  ASSERT_TRUE(a2->final_update.has_value());
  EXPECT_EQ(a2->final_update->state(), quell::v1::ACTION_STATE_SUCCEEDED);
  EXPECT_EQ(a2->final_update->result_json(), R"({"noop":true})");
  EXPECT_EQ(a2->final_update->sequence(), 7u);
}

TEST(ActionJournalTest, RejectsIdsThatAreNotFileNames) {
  testing::TempDir dir;
  FakeClock clock;
  auto journal = ActionJournal::Open(dir.path(), clock).value();
  EXPECT_EQ(journal->MarkStarted("../etc/passwd", "X").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(journal->Lookup("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(journal->Lookup(std::string(129, 'a')).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsSafeActionId("5382f7ea-7557-4ab7-9782-d50480024a4e"));
}

TEST(ActionJournalTest, PruneForgetsOnlyOldFinishedEntries) {
  testing::TempDir dir;
  FakeClock clock;
  auto journal = ActionJournal::Open(dir.path(), clock).value();
  ASSERT_TRUE(journal->MarkFinished("old", "T", Final("old")).ok());
  ASSERT_TRUE(journal->MarkStarted("running-long", "T").ok());
  clock.Advance(10'000);
  ASSERT_TRUE(journal->MarkFinished("new", "T", Final("new")).ok());
  ASSERT_TRUE(journal->PruneFinishedBefore(clock.Now() - 5'000).ok());
  EXPECT_EQ(journal->Lookup("old")->state, ActionJournal::State::kUnknown);
  EXPECT_EQ(journal->Lookup("running-long")->state, ActionJournal::State::kStarted);
  EXPECT_EQ(journal->Lookup("new")->state, ActionJournal::State::kFinished);
}

}  // namespace
}  // namespace quell::agent
