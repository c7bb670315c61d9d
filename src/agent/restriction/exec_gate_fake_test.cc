#include "agent/platform/exec_gate_fake.h"

#include <gtest/gtest.h>

namespace quell::agent {
namespace {

TEST(FakeExecGate, ClosingReleasesEveryWaiterWithAllow) {
  FakeExecGate gate;
  ASSERT_TRUE(gate.Open().ok());
  auto id = gate.Exec("/proc/self/exe", 42);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(gate.Pending(), 1u);
  gate.Close();
  EXPECT_EQ(gate.Pending(), 0u);
  EXPECT_EQ(gate.ReleasedOnClose(), 1u);
  EXPECT_EQ(gate.AwaitAnswer(*id, std::chrono::milliseconds(0)), std::optional<bool>(true));
}

TEST(FakeExecGate, ReplaysRequestsAndInjectsFaults) {
  FakeExecGate gate;
  gate.FailNextOpen(Unavailable("no fanotify"));
  EXPECT_FALSE(gate.Open().ok());
  ASSERT_TRUE(gate.Open().ok());
  gate.FailNextMark(PermissionDenied("EPERM"));
  EXPECT_EQ(gate.MarkMount("/").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(gate.MarkMount("/").ok());
  auto id = gate.Exec("/proc/self/exe", 7);
  gate.InjectOverflow();
  auto w = gate.Wait(std::chrono::milliseconds(10));
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->requests.size(), 1u);
  EXPECT_TRUE(w->overflow);
  EXPECT_EQ(w->requests[0].pid, 7);
  gate.FailNextRespond(Internal("ENOENT"));
  EXPECT_FALSE(gate.Respond(w->requests[0], false).ok());
  EXPECT_EQ(gate.Pending(), 0u);  // the fd is released even when answering fails
  EXPECT_EQ(gate.AwaitAnswer(*id, std::chrono::milliseconds(0)), std::nullopt);
}

}  // namespace
}  // namespace quell::agent
