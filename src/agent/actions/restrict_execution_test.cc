#include "agent/actions/restrict_execution.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "agent/platform/exec_gate_fake.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

class RestrictExecutionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeDirs(dir_ / "info").ok());
    ASSERT_TRUE(WriteFileAtomic(dir_ / "mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n").ok());
  }
  RestrictionOptions Options() {
    return {.state_path = dir_ / "restriction.json",
            .dpkg_info_dir = dir_ / "info",
            .mountinfo_path = dir_ / "mountinfo",
            .wait_slice = std::chrono::milliseconds(20)};
  }
  quell::testing::TempDir dir_;
};

TEST_F(RestrictExecutionTest, ValidatesParameters) {
  FakeExecGate gate;
  RestrictionController controller(gate, nullptr, Options());
  RestrictExecutionAction action(controller);
  EXPECT_EQ(action.Spec().type, "RestrictCodeExecution");
  EXPECT_EQ(action.Spec().undo_type, "UnrestrictCodeExecution");
  EXPECT_TRUE(action.Validate(nlohmann::json::object()).ok());
  EXPECT_TRUE(action.Validate({{"Mode", "Audit"}, {"Comment", "why"}}).ok());
  EXPECT_EQ(action.Validate({{"Mode", "Block"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(action.Validate({{"Mode", 1}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(action.Validate({{"Other", "x"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(action.Validate(nlohmann::json::array()).code(), StatusCode::kInvalidArgument);
}

TEST_F(RestrictExecutionTest, RunRestrictsDefaultEnforceAndUndoLiftsIt) {
  FakeExecGate gate;
  RestrictionController controller(gate, nullptr, Options());
  RestrictExecutionAction action(controller);
  ActionContext ctx{.action_id = "a1", .parameters = {{"Comment", "incident 7"}}};
  auto r = action.Run(ctx);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["restrictionMode"], "Enforce");
  EXPECT_EQ(controller.Current(), RestrictionMode::kEnforce);
  EXPECT_TRUE(gate.IsOpen());
  EXPECT_TRUE(action.Run(ctx).ok());  // idempotent

  ActionContext audit{.action_id = "a2", .parameters = {{"Mode", "Audit"}}};
  ASSERT_TRUE(action.Run(audit).ok());
  EXPECT_EQ(controller.Current(), RestrictionMode::kAudit);

  auto u = action.Undo(ctx);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ((*u)["restrictionMode"], "None");
  EXPECT_FALSE(gate.IsOpen());
}

TEST_F(RestrictExecutionTest, RunReportsTheGuardRefusal) {
  FakeExecGate gate;
  RestrictionOptions options = Options();
  options.require_private_mount_namespace = true;
  options.in_initial_mount_namespace = []() -> Result<bool> { return true; };
  RestrictionController controller(gate, nullptr, options);
  RestrictExecutionAction action(controller);
  ActionContext ctx{.action_id = "a1"};
  EXPECT_EQ(action.Run(ctx).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace quell::agent
