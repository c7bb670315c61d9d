#include "agent/isolation/isolation_controller.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "agent/platform/fake_firewall.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

constexpr UnixMillis kStart = 1'700'000'000'000;

class IsolationControllerTest : public ::testing::Test {
 protected:
  // A controller over the shared fake firewall, state file, probe and resolver, as a
  // restarted agent gets them.
  std::unique_ptr<IsolationController> NewController() {
    IsolationOptions options{
        .state_path = state_path_,
        .server_host = "quell.example",
        .server_port = 8444,
        .selective_allow = {*ParseAllowRule("10.77.0.12/32:22")},
        .link_probe =
            [this](const std::vector<std::string>& addresses, uint16_t port) {
              probed_.push_back(addresses);
              EXPECT_EQ(port, 8444);
              // The probe runs with the new rules already in force.
              EXPECT_TRUE(firewall_.Table("inet", "quell_isolation").has_value());
              return probe_result_;
            },
        .resolve =
            [this](const std::string& host) -> Result<std::vector<std::string>> {
              ++resolves_;
              EXPECT_EQ(host, "quell.example");
              if (!dns_works_) return Unavailable("DNS is down");
              return std::vector<std::string>{"10.77.0.1", "fd77::1"};
            },
        .clock = &clock_,
    };
    return std::make_unique<IsolationController>(firewall_, std::move(options));
  }

  std::optional<std::string> Table() const { return firewall_.Table("inet", "quell_isolation"); }
  nlohmann::json StateFile() const { return nlohmann::json::parse(*ReadFile(state_path_)); }

  quell::testing::TempDir dir_;
  std::string state_path_ = dir_ / "isolation.json";
  FakeFirewall firewall_;
  FakeClock clock_{kStart};
  Status probe_result_;
  bool dns_works_ = true;
  int resolves_ = 0;
  std::vector<std::vector<std::string>> probed_;
};

TEST_F(IsolationControllerTest, IsolateAppliesProbesAndPersistsBeforeReportingSuccess) {
  auto controller = NewController();
  Result<nlohmann::json> result = controller->Isolate(IsolationType::kFull);
  ASSERT_TRUE(result.ok()) << result.status().ToString();

  EXPECT_EQ((*result)["isolationType"], "Full");
  EXPECT_EQ((*result)["pinnedServer"], nlohmann::json({"10.77.0.1:8444", "[fd77::1]:8444"}));
  EXPECT_EQ((*result)["isolatedAt"], FormatIso8601(kStart));
  EXPECT_EQ(controller->Current(), IsolationType::kFull);

  ASSERT_TRUE(Table().has_value());
  EXPECT_NE(Table()->find("ip daddr 10.77.0.1 tcp dport 8444 accept"), std::string::npos);
  EXPECT_NE(Table()->find("ip6 daddr fd77::1 tcp dport 8444 accept"), std::string::npos);
  EXPECT_EQ(Table()->find("10.77.0.12"), std::string::npos) << "Full ignores the allow-list";
  ASSERT_EQ(probed_.size(), 1u);
  EXPECT_EQ(probed_[0], (std::vector<std::string>{"10.77.0.1", "fd77::1"}));

  nlohmann::json state = StateFile();
  EXPECT_EQ(state["isolationType"], "Full");
  EXPECT_EQ(state["serverAddresses"], nlohmann::json({"10.77.0.1", "fd77::1"}));
  EXPECT_EQ(state["serverPort"], 8444);
  EXPECT_EQ(state["isolatedAt"], kStart);
}

TEST_F(IsolationControllerTest, ProbeFailureRollsBackToNoTableAndSaysTheLinkWasCut) {
  auto controller = NewController();
  probe_result_ = DeadlineExceeded("no answer within 3000 ms");
  Result<nlohmann::json> result = controller->Isolate(IsolationType::kFull);

  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(result.status().message().find("cut the server link"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("rolled back to no isolation"), std::string::npos);
  EXPECT_FALSE(Table().has_value());
  EXPECT_EQ(controller->Current(), IsolationType::kNone);
  EXPECT_FALSE(ReadFile(state_path_).ok()) << "nothing persisted";
}

TEST_F(IsolationControllerTest, ProbeFailureWhileSwitchingRestoresThePreviousTable) {
  auto controller = NewController();
  ASSERT_TRUE(controller->Isolate(IsolationType::kSelective).ok());
  const std::optional<std::string> selective_table = Table();

  probe_result_ = Unavailable("connection refused");
  Result<nlohmann::json> result = controller->Isolate(IsolationType::kFull);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("rolled back to Selective"), std::string::npos);
  EXPECT_EQ(Table(), selective_table);
  EXPECT_EQ(controller->Current(), IsolationType::kSelective);
  EXPECT_EQ(StateFile()["isolationType"], "Selective");
}

TEST_F(IsolationControllerTest, FirewallErrorIsReportedAndNothingIsPersisted) {
  auto controller = NewController();
  firewall_.FailNextCall(PermissionDenied("nft: Operation not permitted"));
  Result<nlohmann::json> result = controller->Isolate(IsolationType::kFull);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(result.status().message().find("Operation not permitted"), std::string::npos);
  EXPECT_EQ(controller->Current(), IsolationType::kNone);
  EXPECT_TRUE(probed_.empty());
  EXPECT_FALSE(ReadFile(state_path_).ok());
}

TEST_F(IsolationControllerTest, UnresolvableServerIsNotIsolatedAgainstBlindly) {
  auto controller = NewController();
  dns_works_ = false;
  Result<nlohmann::json> result = controller->Isolate(IsolationType::kFull);
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(Table().has_value());
}

TEST_F(IsolationControllerTest, RestoreReappliesFromTheStateFileWithoutDns) {
  ASSERT_TRUE(NewController()->Isolate(IsolationType::kSelective).ok());
  const std::optional<std::string> applied = Table();
  firewall_.LoseTable("inet", "quell_isolation");  // a reboot: the kernel forgot everything
  dns_works_ = false;
  const int resolves_before = resolves_;

  auto restarted = NewController();
  EXPECT_EQ(restarted->Current(), IsolationType::kNone) << "nothing known before Restore";
  Status restored = restarted->Restore();
  ASSERT_TRUE(restored.ok()) << restored.ToString();
  EXPECT_EQ(restarted->Current(), IsolationType::kSelective);
  EXPECT_EQ(Table(), applied);
  EXPECT_EQ(resolves_, resolves_before);
  EXPECT_EQ(probed_.size(), 1u) << "no probe at start: the agent is not connected yet";

  // Still isolated with the same pins: switching to Full works with DNS down.
  Result<nlohmann::json> full = restarted->Isolate(IsolationType::kFull);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_EQ((*full)["isolatedAt"], FormatIso8601(kStart)) << "isolated since the first Isolate";
}

TEST_F(IsolationControllerTest, RestoreWithoutStateRemovesAnUnrecordedTable) {
  ASSERT_TRUE(firewall_.ReplaceTable("inet", "quell_isolation", "left by a crash").ok());
  auto controller = NewController();
  ASSERT_TRUE(controller->Restore().ok());
  EXPECT_FALSE(Table().has_value());
  EXPECT_EQ(controller->Current(), IsolationType::kNone);
}

TEST_F(IsolationControllerTest, CorruptStateFileIsAnErrorAndLeavesTheFirewallAlone) {
  ASSERT_TRUE(firewall_.ReplaceTable("inet", "quell_isolation", "in force").ok());
  ASSERT_TRUE(WriteFileAtomic(state_path_, "{\"version\":1,\"isolationType\":\"Fu").ok());
  auto controller = NewController();
  Status restored = controller->Restore();
  EXPECT_FALSE(restored.ok());
  EXPECT_NE(restored.message().find("unreadable"), std::string::npos) << restored.ToString();
  EXPECT_EQ(Table(), "in force");
}

TEST_F(IsolationControllerTest, RepairRecreatesALostOrChangedTableAndOnlyThen) {
  auto controller = NewController();
  EXPECT_FALSE(*controller->Repair()) << "not isolated: nothing to repair";
  ASSERT_TRUE(controller->Isolate(IsolationType::kFull).ok());
  const std::optional<std::string> applied = Table();
  EXPECT_FALSE(*controller->Repair());

  firewall_.LoseTable("inet", "quell_isolation");
  Result<bool> repaired = controller->Repair();
  ASSERT_TRUE(repaired.ok());
  EXPECT_TRUE(*repaired);
  EXPECT_EQ(Table(), applied);

  firewall_.TamperTable("inet", "quell_isolation", "table inet quell_isolation {}");
  EXPECT_TRUE(*controller->Repair());
  EXPECT_EQ(Table(), applied);
  EXPECT_FALSE(*controller->Repair());
}

TEST_F(IsolationControllerTest, ReleaseDeletesAndPersistsAndIsIdempotent) {
  auto controller = NewController();
  ASSERT_TRUE(controller->Isolate(IsolationType::kFull).ok());
  clock_.Advance(60'000);
  Result<nlohmann::json> released = controller->Release();
  ASSERT_TRUE(released.ok()) << released.status().ToString();
  EXPECT_EQ((*released)["previousIsolationType"], "Full");
  EXPECT_EQ((*released)["releasedAt"], FormatIso8601(kStart + 60'000));
  EXPECT_FALSE(Table().has_value());
  EXPECT_EQ(controller->Current(), IsolationType::kNone);
  EXPECT_EQ(StateFile()["isolationType"], "None");
  EXPECT_FALSE(*controller->Repair()) << "a released host is not re-isolated";

  Result<nlohmann::json> again = controller->Release();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["previousIsolationType"], "None");

  auto restarted = NewController();
  ASSERT_TRUE(restarted->Restore().ok());
  EXPECT_EQ(restarted->Current(), IsolationType::kNone);
  EXPECT_FALSE(Table().has_value());
}

TEST_F(IsolationControllerTest, ReleaseThatCannotPersistKeepsTheHostIsolated) {
  auto controller = NewController();
  ASSERT_TRUE(controller->Isolate(IsolationType::kFull).ok());
  std::filesystem::remove_all(dir_.path());  // the state directory is gone: the write fails
  Result<nlohmann::json> released = controller->Release();
  EXPECT_FALSE(released.ok());
  EXPECT_NE(released.status().message().find("host stays isolated"), std::string::npos)
      << released.status().ToString();
  EXPECT_TRUE(Table().has_value());
  EXPECT_EQ(controller->Current(), IsolationType::kFull);
}

TEST_F(IsolationControllerTest, IsolatingTwiceIsIdempotent) {
  auto controller = NewController();
  Result<nlohmann::json> first = controller->Isolate(IsolationType::kFull);
  const std::optional<std::string> table = Table();
  clock_.Advance(5'000);
  Result<nlohmann::json> second = controller->Isolate(IsolationType::kFull);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(Table(), table);
  EXPECT_EQ(resolves_, 1) << "the pinned addresses are reused";
}

TEST_F(IsolationControllerTest, SelectiveThenFullSwitchesTheAllowList) {
  auto controller = NewController();
  Result<nlohmann::json> selective = controller->Isolate(IsolationType::kSelective);
  ASSERT_TRUE(selective.ok());
  EXPECT_EQ((*selective)["allow"], nlohmann::json({"10.77.0.12/32:22"}));
  EXPECT_NE(Table()->find("ip daddr 10.77.0.12/32"), std::string::npos);
  EXPECT_EQ(StateFile()["allow"], nlohmann::json({"10.77.0.12/32:22"}));

  Result<nlohmann::json> full = controller->Isolate(IsolationType::kFull);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ((*full)["isolationType"], "Full");
  EXPECT_EQ((*full)["allow"], nlohmann::json::array());
  EXPECT_EQ(Table()->find("10.77.0.12"), std::string::npos);
  EXPECT_EQ(StateFile()["isolationType"], "Full");
  EXPECT_EQ(controller->Current(), IsolationType::kFull);
}

TEST_F(IsolationControllerTest, NoneIsNotAnIsolationType) {
  EXPECT_EQ(NewController()->Isolate(IsolationType::kNone).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quell::agent
