#include "agent/state/spool.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

quell::v1::AgentMessage Update(const std::string& id, quell::v1::ActionState state) {
  quell::v1::AgentMessage m;
  m.mutable_action_update()->set_action_id(id);
  m.mutable_action_update()->set_state(state);
  return m;
}

quell::v1::AgentMessage Notice(const std::string& kind) {
  quell::v1::AgentMessage m;
  m.mutable_notice()->set_kind(kind);
  return m;
}

std::vector<std::string> PendingIds(const Spool& spool) {
  std::vector<std::string> out;
  for (const auto& m : spool.Pending()) {
    out.push_back(m.has_notice() ? m.notice().kind() : m.action_update().action_id());
  }
  return out;
}

TEST(SpoolTest, KeepsOrderAndSurvivesRestartUntilAcked) {
  testing::TempDir dir;
  uint64_t first = 0;
  {
    auto spool = Spool::Open(dir.path());
    ASSERT_TRUE(spool.ok()) << spool.status().ToString();
    auto a = Update("a", quell::v1::ACTION_STATE_SUCCEEDED);
    auto b = Notice("IsolationTampered");
    auto c = Update("c", quell::v1::ACTION_STATE_FAILED);
    first = *(*spool)->Append(a);
    ASSERT_TRUE((*spool)->Append(b).ok());
    ASSERT_TRUE((*spool)->Append(c).ok());
    EXPECT_EQ(a.action_update().sequence(), first);  // the caller sees the assigned sequence
    EXPECT_LT(first, b.notice().sequence());
    EXPECT_LT(b.notice().sequence(), c.action_update().sequence());
  }
  auto spool = Spool::Open(dir.path());  // the agent restarted
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ(PendingIds(**spool), (std::vector<std::string>{"a", "IsolationTampered", "c"}));

  ASSERT_TRUE((*spool)->Ack(first).ok());
  ASSERT_TRUE((*spool)->Ack(first).ok());  // a duplicate ack is harmless
  EXPECT_EQ(PendingIds(**Spool::Open(dir.path())),
            (std::vector<std::string>{"IsolationTampered", "c"}));
}

TEST(SpoolTest, SequencesKeepGrowingAfterEverythingIsAckedAndTheAgentRestarts) {
  testing::TempDir dir;
  uint64_t last = 0;
  {
    auto spool = Spool::Open(dir.path()).value();
    auto m = Update("a", quell::v1::ACTION_STATE_SUCCEEDED);
    last = *spool->Append(m);
    ASSERT_TRUE(spool->Ack(last).ok());
    last = *spool->NextSequence();
  }
  auto spool = Spool::Open(dir.path()).value();
  EXPECT_EQ(spool->size(), 0u);
  auto m = Update("b", quell::v1::ACTION_STATE_SUCCEEDED);
  EXPECT_GT(*spool->Append(m), last);  // the server never sees a sequence reused
}

TEST(SpoolTest, WhenFullDropsOldestProgressButNeverFinalResults) {
  testing::TempDir dir;
  auto spool = Spool::Open(dir.path(), /*max_entries=*/3).value();
  auto p1 = Update("p1", quell::v1::ACTION_STATE_IN_PROGRESS);
  auto f1 = Update("f1", quell::v1::ACTION_STATE_SUCCEEDED);
  auto p2 = Update("p2", quell::v1::ACTION_STATE_IN_PROGRESS);
  auto f2 = Update("f2", quell::v1::ACTION_STATE_FAILED);
  auto f3 = Update("f3", quell::v1::ACTION_STATE_CANCELLED);
  auto f4 = Update("f4", quell::v1::ACTION_STATE_SUCCEEDED);
  for (auto* m : {&p1, &f1, &p2, &f2, &f3, &f4}) ASSERT_TRUE(spool->Append(*m).ok());
  EXPECT_EQ(PendingIds(*spool), (std::vector<std::string>{"f1", "f2", "f3", "f4"}));
  EXPECT_EQ(PendingIds(**Spool::Open(dir.path(), 3)),
            (std::vector<std::string>{"f1", "f2", "f3", "f4"}));
}

TEST(SpoolTest, CorruptFileIsSetAsideNotFatal) {
  testing::TempDir dir;
  {
    auto spool = Spool::Open(dir.path()).value();
    auto m = Update("good", quell::v1::ACTION_STATE_SUCCEEDED);
    ASSERT_TRUE(spool->Append(m).ok());
  }
  std::ofstream(dir / "00000000000000000099.msg") << "\xff\xff not a protobuf";
  auto spool = Spool::Open(dir.path());
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ(PendingIds(**spool), (std::vector<std::string>{"good"}));
}

TEST(SpoolTest, RefusesMessagesThatCannotBeAcknowledged) {
  testing::TempDir dir;
  auto spool = Spool::Open(dir.path()).value();
  quell::v1::AgentMessage heartbeat;
  heartbeat.mutable_heartbeat()->set_sent_unix_ms(1);
  EXPECT_EQ(spool->Append(heartbeat).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quell::agent
