#include "agent/actions/action_registry.h"

#include <gtest/gtest.h>

#include "agent/actions/builtin_actions.h"
#include "agent/platform/fake_firewall.h"

namespace quell::agent {
namespace {

class UndoableAction final : public Action {
 public:
  const ActionSpec& Spec() const override {
    static const ActionSpec spec{.type = "Hold", .undo_type = "Release", .risk = "low"};
    return spec;
  }
  Status Validate(const nlohmann::json&) const override { return Status::Ok(); }
  Result<nlohmann::json> Run(ActionContext&) override { return nlohmann::json{{"held", true}}; }
  Result<nlohmann::json> Undo(ActionContext&) override {
    return nlohmann::json{{"held", false}};
  }
};

TEST(ActionRegistryTest, FindsActionByTypeAndByUndoType) {
  ActionRegistry registry;
  registry.Register(std::make_unique<UndoableAction>());
  auto run = registry.Find("Hold");
  ASSERT_TRUE(run.ok());
  EXPECT_FALSE(run->undo);
  auto undo = registry.Find("Release");
  ASSERT_TRUE(undo.ok());
  EXPECT_TRUE(undo->undo);
  EXPECT_EQ(undo->action, run->action);
  ActionContext ctx;
  EXPECT_EQ((*undo->action->Undo(ctx))["held"], false);
}

TEST(ActionRegistryTest, UnknownTypeIsNotFoundWithItsName) {
  ActionRegistry registry;
  auto missing = registry.Find("Reboot");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("Reboot"), std::string::npos);
}

TEST(BuiltinActionsTest, DiagnosticNoopIsRegisteredAndRejectsParameters) {
  ActionRegistry registry;
  RegisterBuiltinActions(registry, BuiltinActionDeps{});
  auto noop = registry.Find("DiagnosticNoop");
  ASSERT_TRUE(noop.ok());
  EXPECT_TRUE(noop->action->Validate(nlohmann::json::object()).ok());
  EXPECT_FALSE(noop->action->Validate({{"x", 1}}).ok());
  ActionContext ctx;
  EXPECT_EQ(*noop->action->Run(ctx), (nlohmann::json{{"noop", true}}));
}

TEST(BuiltinActionsTest, IsolateAndItsUndoAreOfferedWhenIsolationIsAvailable) {
  ActionRegistry without;
  RegisterBuiltinActions(without, BuiltinActionDeps{});
  EXPECT_FALSE(without.Find("Isolate").ok());

  FakeFirewall firewall;
  IsolationController controller(firewall, IsolationOptions{.state_path = "/nonexistent/x"});
  ActionRegistry registry;
  RegisterBuiltinActions(registry, BuiltinActionDeps{.isolation = &controller});
  auto isolate = registry.Find("Isolate");
  auto release = registry.Find("Unisolate");
  ASSERT_TRUE(isolate.ok());
  ASSERT_TRUE(release.ok());
  EXPECT_TRUE(release->undo);
  EXPECT_EQ(isolate->action, release->action);
}

}  // namespace
}  // namespace quell::agent
