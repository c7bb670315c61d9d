#include "server/actions/action_lifecycle.h"

#include <gtest/gtest.h>

namespace quell::server {
namespace {

using S = ActionStatus;
using E = ActionEvent;

ActionStatus After(S from, E event) { return NextStatus(from, event).value().to; }

TEST(ActionLifecycleTest, HappyPath) {
  EXPECT_EQ(After(S::kPending, E::kAgentStarted), S::kInProgress);
  EXPECT_EQ(After(S::kInProgress, E::kAgentSucceeded), S::kSucceeded);
  EXPECT_EQ(After(S::kInProgress, E::kAgentFailed), S::kFailed);
}

TEST(ActionLifecycleTest, AgentMayReportTheEndWithoutStarting) {
  EXPECT_EQ(After(S::kPending, E::kAgentSucceeded), S::kSucceeded);
  EXPECT_EQ(After(S::kPending, E::kAgentFailed), S::kFailed);
}

TEST(ActionLifecycleTest, CancelPendingIsImmediateInProgressWaitsForTheAgent) {
  EXPECT_EQ(After(S::kPending, E::kUserCancelled), S::kCancelled);
  Transition t = NextStatus(S::kInProgress, E::kUserCancelled).value();
  EXPECT_EQ(t.to, S::kInProgress);
  EXPECT_FALSE(t.changed);
  EXPECT_EQ(After(S::kInProgress, E::kAgentCancelled), S::kCancelled);
}

TEST(ActionLifecycleTest, ExpiryTimesOutOpenActions) {
  EXPECT_EQ(After(S::kPending, E::kExpired), S::kTimeOut);
  EXPECT_EQ(After(S::kInProgress, E::kExpired), S::kTimeOut);
}

TEST(ActionLifecycleTest, FinalStatesNeverChange) {
  for (S final_status : {S::kSucceeded, S::kFailed, S::kTimeOut, S::kCancelled}) {
    for (E e : {E::kAgentStarted, E::kAgentSucceeded, E::kAgentFailed, E::kAgentCancelled,
                E::kExpired}) {
      Transition t = NextStatus(final_status, e).value();
      EXPECT_EQ(t.to, final_status);
      EXPECT_FALSE(t.changed);
    }
    Result<Transition> cancel = NextStatus(final_status, E::kUserCancelled);
    ASSERT_FALSE(cancel.ok());
    EXPECT_EQ(cancel.status().code(), StatusCode::kFailedPrecondition);
  }
}

TEST(ActionLifecycleTest, RepeatedStartIsNotAChange) {
  EXPECT_FALSE(NextStatus(S::kInProgress, E::kAgentStarted).value().changed);
  EXPECT_TRUE(NextStatus(S::kPending, E::kAgentStarted).value().changed);
}

}  // namespace
}  // namespace quell::server
