#include "agent/quarantine/persistence.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "agent/quarantine/testing/tree_snapshot.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::quarantine {
namespace {

using quell::testing::TempDir;
using testing::Snapshot;
using testing::WriteFileAt;

constexpr char kEvil[] = "/tmp/evil bin";  // a space on purpose

TEST(LineNamesPathTest, WholeWordsOnly) {
  EXPECT_TRUE(LineNamesPath("* * * * * root /tmp/x", "/tmp/x"));
  EXPECT_TRUE(LineNamesPath("ExecStart=-/tmp/x --flag", "/tmp/x"));
  EXPECT_TRUE(LineNamesPath("RUN+=\"/tmp/x\"", "/tmp/x"));
  EXPECT_TRUE(LineNamesPath("nohup /tmp/x>/dev/null 2>&1 &", "/tmp/x"));
  EXPECT_TRUE(LineNamesPath("/tmp/x;echo", "/tmp/x"));
  EXPECT_TRUE(LineNamesPath("sh -c '/tmp/my dir/x'", "/tmp/my dir/x"));
  EXPECT_TRUE(LineNamesPath("/tmp/my\\ dir/x &", "/tmp/my dir/x"));
  EXPECT_FALSE(LineNamesPath("/tmp/x2 &", "/tmp/x"));
  EXPECT_FALSE(LineNamesPath("/tmp/x.sh", "/tmp/x"));
  EXPECT_FALSE(LineNamesPath("/var/tmp/x", "/tmp/x"));
  EXPECT_FALSE(LineNamesPath("/tmp/xdir/y", "/tmp/x"));
}

// One persistence kind: the files that make the fake host, and which locations (host paths)
// must be found for kEvil.
struct KindCase {
  std::string name;
  std::vector<std::pair<std::string, std::string>> files;     // host path -> content
  std::vector<std::pair<std::string, std::string>> symlinks;  // host path -> target
  std::set<std::string> expected_locations;
  std::vector<std::string> kept_lines;  // unrelated lines that must survive the removal
};

void PrintTo(const KindCase& c, std::ostream* os) { *os << c.name; }

std::vector<KindCase> Cases() {
  return {
      {"cron",
       {{"/etc/crontab", "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n"
                         "*/5 * * * * root \"/tmp/evil bin\" --beacon\n"},
        {"/etc/cron.d/updater", "# keep me\n@reboot root /tmp/evil\\ bin\n0 1 * * * root /usr/bin/true\n"},
        {"/var/spool/cron/crontabs/alice", "* * * * * /tmp/evil bin2\n@hourly '/tmp/evil bin'\n"}},
       {},
       {"/etc/crontab", "/etc/cron.d/updater", "/var/spool/cron/crontabs/alice"},
       {"17 * * * * root cd / && run-parts --report /etc/cron.hourly", "# keep me",
        "0 1 * * * root /usr/bin/true", "* * * * * /tmp/evil bin2"}},
      {"systemd",
       {{"/etc/systemd/system/evil.service",
         "[Unit]\nDescription=x\n[Service]\nExecStart=\"/tmp/evil bin\" -d\nRestart=always\n"
         "[Install]\nWantedBy=multi-user.target\n"},
        {"/etc/systemd/system/good.service", "[Service]\nExecStart=/usr/bin/good\n"},
        {"/usr/local/lib/systemd/system/helper.service",
         "[Service]\nExecStartPre=/bin/sh '/tmp/evil bin'\nExecStart=/usr/bin/sleep 1\n"},
        {"/home/alice/.config/systemd/user/u.service", "[Service]\nExecStart='/tmp/evil bin'\n"}},
       {{"/etc/systemd/system/multi-user.target.wants/evil.service", "/etc/systemd/system/evil.service"},
        {"/etc/systemd/system/multi-user.target.wants/good.service", "/etc/systemd/system/good.service"},
        {"/home/alice/.config/systemd/user/default.target.wants/u.service",
         "/home/alice/.config/systemd/user/u.service"}},
       {"/etc/systemd/system/evil.service", "/etc/systemd/system/multi-user.target.wants/evil.service",
        "/usr/local/lib/systemd/system/helper.service", "/home/alice/.config/systemd/user/u.service",
        "/home/alice/.config/systemd/user/default.target.wants/u.service"},
       {}},
      {"rc.local",
       {{"/etc/rc.local", "#!/bin/sh -e\n\"/tmp/evil bin\" &\nexit 0\n"}},
       {},
       {"/etc/rc.local"},
       {"#!/bin/sh -e", "exit 0"}},
      {"profile",
       {{"/etc/profile", "export PATH=/usr/bin\n"},
        {"/etc/profile.d/zz.sh", "( '/tmp/evil bin' & ) 2>/dev/null\nalias ll='ls -l'\n"},
        {"/etc/bash.bashrc", "PS1='$ '\n/tmp/evil\\ bin >/dev/null 2>&1 &"},  // no final newline
        {"/root/.bashrc", "\"/tmp/evil bin\"\n"},
        {"/home/alice/.profile", "umask 022\n"},
        {"/home/alice/.bash_profile", "nohup '/tmp/evil bin' &\n"}},
       {},
       {"/etc/profile.d/zz.sh", "/etc/bash.bashrc", "/root/.bashrc", "/home/alice/.bash_profile"},
       {"alias ll='ls -l'", "PS1='$ '"}},
      {"authorized_keys",
       {{"/root/.ssh/authorized_keys",
         "ssh-ed25519 AAAAgood admin@host\ncommand=\"/tmp/evil\\ bin\",no-pty ssh-ed25519 AAAAevil x\n"},
        {"/home/alice/.ssh/authorized_keys",
         "command=\"/usr/bin/rrsync /srv\" ssh-ed25519 AAAAok y\n"
         "command=\"sh '/tmp/evil bin'\" ssh-rsa AAAAevil2 z\n"}},
       {},
       {"/root/.ssh/authorized_keys", "/home/alice/.ssh/authorized_keys"},
       {"ssh-ed25519 AAAAgood admin@host", "command=\"/usr/bin/rrsync /srv\" ssh-ed25519 AAAAok y"}},
      {"xdg-autostart",
       {{"/etc/xdg/autostart/evil.desktop", "[Desktop Entry]\nType=Application\nExec='/tmp/evil bin'\n"},
        {"/etc/xdg/autostart/ok.desktop", "[Desktop Entry]\nExec=/usr/bin/ok\n"},
        {"/home/alice/.config/autostart/e.desktop", "[Desktop Entry]\nExec=\"/tmp/evil bin\" --x\n"}},
       {},
       {"/etc/xdg/autostart/evil.desktop", "/home/alice/.config/autostart/e.desktop"},
       {}},
      {"udev",
       {{"/etc/udev/rules.d/99-evil.rules",
         "# usb\nACTION==\"add\", SUBSYSTEM==\"usb\", RUN+=\"/tmp/evil bin\"\n"
         "ACTION==\"add\", RUN+=\"/usr/bin/ok\"\n"}},
       {},
       {"/etc/udev/rules.d/99-evil.rules"},
       {"ACTION==\"add\", RUN+=\"/usr/bin/ok\""}},
  };
}

class PersistenceKindTest : public ::testing::TestWithParam<KindCase> {
 protected:
  void SetUp() override {
    root_ = tmp_ / "root";
    for (const auto& [path, content] : GetParam().files) WriteFileAt(root_ + path, content, 0640);
    for (const auto& [path, target] : GetParam().symlinks) {
      ASSERT_TRUE(MakeDirs(ParentDir(root_ + path), 0755).ok());
      ASSERT_EQ(::symlink(target.c_str(), (root_ + path).c_str()), 0);
    }
    options_.root = root_;
    options_.use_systemctl = false;
    options_.run_command = [this](const std::vector<std::string>& argv) -> Result<int> {
      commands_.push_back(argv);
      return 0;
    };
  }

  TempDir tmp_;
  std::string root_;
  PersistenceOptions options_;
  std::vector<std::vector<std::string>> commands_;
};

TEST_P(PersistenceKindTest, RemoveThenRestoreLeavesTheTreeIdentical) {
  const KindCase& kc = GetParam();
  const auto before = Snapshot(root_);
  ASSERT_TRUE(testing::CopyTree(root_, tmp_ / "original"));

  std::vector<PersistenceChange> found = FindPersistence(options_, kEvil);
  std::set<std::string> locations;
  for (const auto& c : found) {
    locations.insert(c.location);
    if (kc.name == "profile") {
      EXPECT_EQ(c.kind, "profile");
    } else {
      EXPECT_EQ(c.kind, kc.name) << c.location;
    }
  }
  EXPECT_EQ(locations, kc.expected_locations);
  EXPECT_EQ(Snapshot(root_), before);  // finding changes nothing

  // Records survive JSON (the journal) exactly.
  for (PersistenceChange& c : found) {
    auto back = PersistenceChangeFromJson(nlohmann::json::parse(PersistenceChangeToJson(c).dump()));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->before.content, c.before.content);
    EXPECT_EQ(back->after, c.after);
    c = std::move(*back);
  }

  for (const auto& c : found) ASSERT_TRUE(RemovePersistence(options_, c).ok()) << c.location;
  for (const auto& c : found) ASSERT_TRUE(RemovePersistence(options_, c).ok()) << "idempotent";
  // Nothing names the file any more; the unrelated lines are still there.
  EXPECT_TRUE(FindPersistence(options_, kEvil).empty());
  std::string all;
  for (const auto& [rel, desc] : Snapshot(root_)) all += desc + "\n";
  for (const std::string& line : kc.kept_lines) EXPECT_NE(all.find(line), std::string::npos) << line;
  for (const auto& c : found) {
    if (!c.remove_file) {
      auto after = ReadFile(root_ + c.location);
      ASSERT_TRUE(after.ok());
      EXPECT_EQ(*after, c.after);
      struct stat st {};
      ASSERT_EQ(::stat((root_ + c.location).c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 07777, 0640u) << "mode kept while edited";
    } else {
      struct stat st {};
      EXPECT_NE(::lstat((root_ + c.location).c_str(), &st), 0) << c.location;
    }
  }

  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    ASSERT_TRUE(RestorePersistence(options_, *it).ok()) << it->location;
  }
  for (auto it = found.rbegin(); it != found.rend(); ++it) {
    ASSERT_TRUE(RestorePersistence(options_, *it).ok()) << "idempotent";
  }
  EXPECT_EQ(Snapshot(root_), before);
  EXPECT_EQ(testing::DiffTrees(tmp_ / "original", root_), 0);
  EXPECT_TRUE(commands_.empty());  // persistence functions never call systemctl themselves
}

INSTANTIATE_TEST_SUITE_P(Kinds, PersistenceKindTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(PersistenceTest, LdPreloadKeepsOtherLibrariesOnTheLine) {
  TempDir tmp;
  const std::string root = tmp / "root";
  WriteFileAt(root + "/etc/ld.so.preload", "/usr/lib/libgood.so /tmp/evil.so:/usr/lib/libok.so\n/tmp/evil.so\n");
  PersistenceOptions o{.root = root};
  const auto before = Snapshot(root);
  auto found = FindPersistence(o, "/tmp/evil.so");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].kind, "ld.so.preload");
  ASSERT_TRUE(RemovePersistence(o, found[0]).ok());
  EXPECT_EQ(*ReadFile(root + "/etc/ld.so.preload"), "/usr/lib/libgood.so /usr/lib/libok.so\n");
  ASSERT_TRUE(RestorePersistence(o, found[0]).ok());
  EXPECT_EQ(Snapshot(root), before);
}

TEST(PersistenceTest, RestoreReinsertsLinesIntoAFileEditedSince) {
  TempDir tmp;
  const std::string root = tmp / "root";
  WriteFileAt(root + "/etc/crontab", "a\n* * * * * root /tmp/evil\nb\n");
  PersistenceOptions o{.root = root};
  auto found = FindPersistence(o, "/tmp/evil");
  ASSERT_EQ(found.size(), 1u);
  ASSERT_TRUE(RemovePersistence(o, found[0]).ok());
  WriteFileAt(root + "/etc/crontab", "a\nb\nc-added-later\n");
  ASSERT_TRUE(RestorePersistence(o, found[0]).ok());
  EXPECT_EQ(*ReadFile(root + "/etc/crontab"), "a\n* * * * * root /tmp/evil\nb\nc-added-later\n");
}

TEST(PersistenceTest, RemoveRefusesALocationChangedSinceItWasExamined) {
  TempDir tmp;
  const std::string root = tmp / "root";
  WriteFileAt(root + "/etc/rc.local", "/tmp/evil &\n");
  PersistenceOptions o{.root = root};
  auto found = FindPersistence(o, "/tmp/evil");
  ASSERT_EQ(found.size(), 1u);
  WriteFileAt(root + "/etc/rc.local", "/tmp/evil &\necho changed\n");
  EXPECT_EQ(RemovePersistence(o, found[0]).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*ReadFile(root + "/etc/rc.local"), "/tmp/evil &\necho changed\n");
}

TEST(PersistenceTest, RestoreOfARemovedFileRefusesToOverwriteANewOne) {
  TempDir tmp;
  const std::string root = tmp / "root";
  WriteFileAt(root + "/etc/xdg/autostart/e.desktop", "[Desktop Entry]\nExec=/tmp/evil\n");
  PersistenceOptions o{.root = root};
  auto found = FindPersistence(o, "/tmp/evil");
  ASSERT_EQ(found.size(), 1u);
  ASSERT_TRUE(RemovePersistence(o, found[0]).ok());
  WriteFileAt(root + "/etc/xdg/autostart/e.desktop", "[Desktop Entry]\nExec=/usr/bin/new\n");
  EXPECT_EQ(RestorePersistence(o, found[0]).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*ReadFile(root + "/etc/xdg/autostart/e.desktop"), "[Desktop Entry]\nExec=/usr/bin/new\n");
}

TEST(PersistenceTest, PathsNamedByPersistenceListsCandidates) {
  TempDir tmp;
  const std::string root = tmp / "root";
  WriteFileAt(root + "/etc/cron.d/x", "* * * * * root /opt/a/run --x /var/log/y\n# /not/this\n");
  WriteFileAt(root + "/etc/systemd/system/s.service", "[Service]\nExecStart=/usr/local/bin/s\n");
  auto paths = PathsNamedByPersistence({.root = root});
  std::set<std::string> set(paths.begin(), paths.end());
  EXPECT_TRUE(set.contains("/opt/a/run"));
  EXPECT_TRUE(set.contains("/var/log/y"));
  EXPECT_TRUE(set.contains("/usr/local/bin/s"));
  EXPECT_FALSE(set.contains("/not/this"));
}

}  // namespace
}  // namespace quell::agent::quarantine
