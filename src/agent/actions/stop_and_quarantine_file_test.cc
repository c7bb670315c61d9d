#include "agent/actions/stop_and_quarantine_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "agent/actions/builtin_actions.h"
#include "agent/actions/restore_quarantined_file.h"
#include "agent/quarantine/testing/tree_snapshot.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

using quell::testing::TempDir;
using quarantine::testing::Snapshot;
using quarantine::testing::WriteFileAt;

constexpr char kPayload[] = "#!/bin/sh\necho quell action test payload\n";

class QuarantineActionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_ / "root";
    WriteFileAt(root_ + "/var/tmp/dropper", kPayload, 0755);
    WriteFileAt(root_ + "/etc/cron.d/dropper", "@reboot root /var/tmp/dropper\n");
    WriteFileAt(root_ + "/etc/hostname", "victim\n");
    auto q = quarantine::FileQuarantine::Open(
        {.state_dir = tmp_ / "state", .root = root_, .proc_root = tmp_ / "no-proc", .use_systemctl = false},
        {.run_command = [](const std::vector<std::string>&) -> Result<int> {
           ADD_FAILURE() << "systemctl must not run";
           return 0;
         }});
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    quarantine_ = std::move(*q);
  }

  Result<nlohmann::json> RunAction(Action& a, const std::string& id, nlohmann::json params) {
    EXPECT_TRUE(a.Validate(params).ok()) << a.Validate(params).ToString();
    ActionContext ctx;
    ctx.action_id = id;
    ctx.parameters = std::move(params);
    return a.Run(ctx);
  }

  TempDir tmp_;
  std::string root_;
  std::unique_ptr<quarantine::FileQuarantine> quarantine_;
};

TEST_F(QuarantineActionsTest, ValidateExplainsWhatIsWrong) {
  StopAndQuarantineFileAction stop(*quarantine_);
  const std::string sha1(40, 'a'), sha256(64, 'B');
  EXPECT_TRUE(stop.Validate({{"Sha1", sha1}, {"Comment", "x"}}).ok());
  EXPECT_TRUE(stop.Validate({{"Sha256", sha256}, {"Path", "/tmp/x"}}).ok());
  EXPECT_NE(stop.Validate(nlohmann::json::object()).message().find("exactly one"), std::string::npos);
  EXPECT_FALSE(stop.Validate({{"Sha1", sha1}, {"Sha256", sha256}}).ok());
  EXPECT_NE(stop.Validate({{"Sha1", "abc"}}).message().find("40 hex"), std::string::npos);
  EXPECT_NE(stop.Validate({{"Sha1", sha1}, {"Path", "relative"}}).message().find("absolute"),
            std::string::npos);
  EXPECT_NE(stop.Validate({{"Sha1", sha1}, {"Bogus", "1"}}).message().find("Bogus"), std::string::npos);

  RestoreQuarantinedFileAction restore(*quarantine_);
  EXPECT_TRUE(restore.Validate({{"QuarantineActionId", "act-1"}, {"Comment", "undo"}}).ok());
  EXPECT_TRUE(restore.Validate({{"Sha256", sha256}}).ok());
  EXPECT_FALSE(restore.Validate(nlohmann::json::object()).ok());
  EXPECT_FALSE(restore.Validate({{"QuarantineActionId", "../x"}}).ok());
}

TEST_F(QuarantineActionsTest, QuarantineThenRestoreByActionIdAndBySha256) {
  const auto before = Snapshot(root_);
  StopAndQuarantineFileAction stop(*quarantine_);
  RestoreQuarantinedFileAction restore(*quarantine_);
  const std::string sha256 = Sha256Hex(kPayload);

  auto r = RunAction(stop, "act-q1", {{"Sha256", sha256}, {"Comment", "malware"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["quarantineActionId"], "act-q1");
  ASSERT_EQ((*r)["filesQuarantined"].size(), 1u);
  EXPECT_EQ((*r)["filesQuarantined"][0]["path"], "/var/tmp/dropper");
  EXPECT_FALSE((*r)["filesQuarantined"][0]["vaultId"].get<std::string>().empty());
  ASSERT_EQ((*r)["persistenceRemoved"].size(), 1u);
  EXPECT_EQ((*r)["persistenceRemoved"][0]["kind"], "cron");
  EXPECT_EQ((*r)["persistenceRemoved"][0]["location"], "/etc/cron.d/dropper");
  EXPECT_TRUE((*r)["processesKilled"].empty());
  struct stat st {};
  EXPECT_NE(::lstat((root_ + "/var/tmp/dropper").c_str(), &st), 0);
  EXPECT_TRUE(quarantine_->Contains(sha256));

  auto undone = RunAction(restore, "act-u1", {{"QuarantineActionId", "act-q1"}});
  ASSERT_TRUE(undone.ok()) << undone.status().ToString();
  EXPECT_EQ(Snapshot(root_), before);
  EXPECT_FALSE(quarantine_->Contains(sha256));

  ASSERT_TRUE(RunAction(stop, "act-q2", {{"Sha256", sha256}}).ok());
  auto by_hash = RunAction(restore, "act-u2", {{"Sha256", sha256}});
  ASSERT_TRUE(by_hash.ok()) << by_hash.status().ToString();
  EXPECT_EQ((*by_hash)["restored"].size(), 1u);
  EXPECT_EQ(Snapshot(root_), before);
}

TEST_F(QuarantineActionsTest, UnknownHashFails) {
  StopAndQuarantineFileAction stop(*quarantine_);
  auto r = RunAction(stop, "act-n", {{"Sha1", std::string(40, '0')}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("no file with SHA-1"), std::string::npos);
  RestoreQuarantinedFileAction restore(*quarantine_);
  EXPECT_EQ(RunAction(restore, "act-m", {{"QuarantineActionId", "never-ran"}}).status().code(),
            StatusCode::kNotFound);
}

TEST_F(QuarantineActionsTest, RegisteredByType) {
  ActionRegistry registry;
  RegisterBuiltinActions(registry, BuiltinActionDeps{.quarantine = quarantine_.get()});
  auto stop = registry.Find("StopAndQuarantineFile");
  ASSERT_TRUE(stop.ok());
  EXPECT_FALSE(stop->undo);
  auto restore = registry.Find("RestoreQuarantinedFile");
  ASSERT_TRUE(restore.ok());
  EXPECT_FALSE(restore->undo);
  EXPECT_EQ(restore->action->Spec().type, "RestoreQuarantinedFile");
  ActionRegistry without;
  RegisterBuiltinActions(without, BuiltinActionDeps{});
  EXPECT_FALSE(without.Find("StopAndQuarantineFile").ok());
}

}  // namespace
}  // namespace quell::agent
