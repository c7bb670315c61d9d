#include "agent/actions/isolate.h"

#include <gtest/gtest.h>

#include "agent/platform/fake_firewall.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

class IsolateActionTest : public ::testing::Test {
 protected:
  IsolateActionTest() {
    controller_ = std::make_unique<IsolationController>(
        firewall_,
        IsolationOptions{
            .state_path = dir_ / "isolation.json",
            .server_host = "10.77.0.1",
            .server_port = 8444,
            .selective_allow = {*ParseAllowRule("10.77.0.12/32:22")},
            .link_probe = [this](const std::vector<std::string>&,
                                 uint16_t) { return probe_result_; },
            .resolve = [](const std::string& host) -> Result<std::vector<std::string>> {
              return std::vector<std::string>{host};
            },
            .clock = nullptr,
        });
    action_ = std::make_unique<IsolateAction>(*controller_);
  }

  ActionContext Context(nlohmann::json parameters) {
    ActionContext ctx;
    ctx.action_id = "a-1";
    ctx.parameters = std::move(parameters);
    return ctx;
  }

  quell::testing::TempDir dir_;
  FakeFirewall firewall_;
  Status probe_result_;
  std::unique_ptr<IsolationController> controller_;
  std::unique_ptr<IsolateAction> action_;
};

TEST_F(IsolateActionTest, DescribesItselfAsAnUndoableHighRiskAction) {
  const ActionSpec& spec = action_->Spec();
  EXPECT_EQ(spec.type, "Isolate");
  EXPECT_EQ(spec.undo_type, "Unisolate");
  EXPECT_EQ(spec.risk, "high");
  EXPECT_EQ(spec.parameters_schema["properties"]["IsolationType"]["enum"],
            nlohmann::json({"Full", "Selective"}));
}

TEST_F(IsolateActionTest, ValidateAcceptsTheDefenderShapesAndRejectsTheRest) {
  EXPECT_TRUE(action_->Validate(nlohmann::json::object()).ok());
  EXPECT_TRUE(action_->Validate({{"IsolationType", "Selective"}, {"Comment", "ransomware"}}).ok());
  for (const nlohmann::json& bad :
       {nlohmann::json{{"IsolationType", "UnManagedDevice"}}, nlohmann::json{{"IsolationType", "full"}},
        nlohmann::json{{"IsolationType", "None"}}, nlohmann::json{{"IsolationType", 1}},
        nlohmann::json{{"Scope", "Full"}}, nlohmann::json::array()}) {
    Status status = action_->Validate(bad);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << bad.dump();
  }
  EXPECT_NE(action_->Validate({{"IsolationType", "UnManagedDevice"}}).message().find("UnManagedDevice"),
            std::string::npos);
}

TEST_F(IsolateActionTest, RunIsolatesFullByDefaultAndUndoReleases) {
  ActionContext ctx = Context(nlohmann::json::object());
  Result<nlohmann::json> result = action_->Run(ctx);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ((*result)["isolationType"], "Full");
  EXPECT_EQ((*result)["pinnedServer"], nlohmann::json({"10.77.0.1:8444"}));
  EXPECT_TRUE(firewall_.Table("inet", "quell_isolation").has_value());
  EXPECT_EQ(controller_->Current(), IsolationType::kFull);

  ActionContext undo_ctx = Context({{"Comment", "all clear"}});
  Result<nlohmann::json> released = action_->Undo(undo_ctx);
  ASSERT_TRUE(released.ok()) << released.status().ToString();
  EXPECT_EQ((*released)["isolationType"], "None");
  EXPECT_FALSE(firewall_.Table("inet", "quell_isolation").has_value());
}

TEST_F(IsolateActionTest, RunSelectiveCarriesTheAllowListAndIsIdempotent) {
  ActionContext ctx = Context({{"IsolationType", "Selective"}});
  Result<nlohmann::json> first = action_->Run(ctx);
  Result<nlohmann::json> second = action_->Run(ctx);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ((*second)["isolationType"], "Selective");
  EXPECT_EQ((*second)["allow"], nlohmann::json({"10.77.0.12/32:22"}));
  EXPECT_EQ(*first, *second);
}

TEST_F(IsolateActionTest, RunFailsWhenTheServerLinkWouldBeCut) {
  probe_result_ = DeadlineExceeded("no answer");
  ActionContext ctx = Context(nlohmann::json::object());
  Result<nlohmann::json> result = action_->Run(ctx);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("cut the server link"), std::string::npos);
  EXPECT_FALSE(firewall_.Table("inet", "quell_isolation").has_value());
}

TEST_F(IsolateActionTest, RunRejectsBadParametersWithoutTouchingTheFirewall) {
  ActionContext ctx = Context({{"IsolationType", "Partial"}});
  EXPECT_EQ(action_->Run(ctx).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(firewall_.replace_calls(), 0);
}

}  // namespace
}  // namespace quell::agent
