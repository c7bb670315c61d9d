#include "agent/quarantine/file_quarantine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <set>

#include "agent/quarantine/testing/tree_snapshot.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::quarantine {
namespace {

using quell::testing::TempDir;
using testing::Snapshot;
using testing::WriteFileAt;

constexpr char kEvilContent[] = "\x7f" "ELF-not-really: quell quarantine test payload\n";

// A fake /proc whose processes disappear on SIGKILL.
class FakeProcSignaller final : public ProcessSignaller {
 public:
  explicit FakeProcSignaller(std::string root) : root_(std::move(root)) {}
  Status Signal(const ProcessInfo& p, int sig) override {
    if (sig == SIGKILL) std::filesystem::remove_all(root_ + "/" + std::to_string(p.pid));
    return Status::Ok();
  }
  std::vector<pid_t> WaitExited(const std::vector<ProcessInfo>& ps, std::chrono::milliseconds) override {
    std::vector<pid_t> alive;
    for (const auto& p : ps) {
      if (std::filesystem::exists(root_ + "/" + std::to_string(p.pid))) alive.push_back(p.pid);
    }
    return alive;
  }

 private:
  std::string root_;
};

void AddProc(const std::string& proc, pid_t pid, pid_t ppid, const std::string& exe,
             const std::vector<std::string>& argv) {
  const std::string dir = proc + "/" + std::to_string(pid);
  std::filesystem::create_directories(dir);
  WriteFileAt(dir + "/stat", std::to_string(pid) + " (x) S " + std::to_string(ppid) +
                                 " 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " + std::to_string(5000 + pid) +
                                 " 0 0\n");
  std::string cmdline;
  for (const auto& a : argv) cmdline += a + std::string(1, '\0');
  WriteFileAt(dir + "/cmdline", cmdline);
  std::filesystem::create_symlink(exe, dir + "/exe");
}

// A planted "malware" under a fake root: the file, a running process and its child, a cron
// line, a systemd unit + enable symlink, a profile line and an authorized_keys command.
class QuarantineFixture {
 public:
  explicit QuarantineFixture(const std::string& base, const std::string& evil = "/tmp/evil")
      : root(base + "/root"), proc(base + "/proc"), state(base + "/state"), evil_path(evil) {
    WriteFileAt(root + evil_path, kEvilContent, 0755);
    struct timespec times[2] = {{1'600'000'000, 1}, {1'550'000'000, 2}};
    ::utimensat(AT_FDCWD, (root + evil_path).c_str(), times, 0);
    const std::string q = "'" + evil_path + "'";
    WriteFileAt(root + "/etc/crontab", "SHELL=/bin/sh\n* * * * * root " + q + " --beacon\n");
    WriteFileAt(root + "/etc/systemd/system/evil.service",
                "[Service]\nExecStart=" + q + "\n[Install]\nWantedBy=multi-user.target\n");
    std::filesystem::create_directories(root + "/etc/systemd/system/multi-user.target.wants");
    std::filesystem::create_symlink("/etc/systemd/system/evil.service",
                                    root + "/etc/systemd/system/multi-user.target.wants/evil.service");
    WriteFileAt(root + "/etc/profile.d/x.sh", "export A=1\n(" + q + " &)\n");
    WriteFileAt(root + "/root/.ssh/authorized_keys",
                "ssh-ed25519 AAAAgood admin\ncommand=\"" + evil_path + "\" ssh-ed25519 AAAAevil x\n", 0600);
    WriteFileAt(root + "/home/alice/notes.txt", "unrelated\n");
    AddProc(proc, 100, 1, evil_path, {evil_path});
    AddProc(proc, 101, 100, "/usr/bin/sleep", {"sleep", "100"});
    AddProc(proc, 102, 1, "/usr/bin/sleep", {"sleep", "5"});
  }

  QuarantineSettings Settings() const {
    return {.state_dir = state, .root = root, .proc_root = proc, .use_systemctl = false};
  }
  QuarantineHooks Hooks(std::vector<std::vector<std::string>>* commands = nullptr) const {
    QuarantineHooks h;
    h.signaller = std::make_shared<FakeProcSignaller>(proc);
    h.self_pid = 999;
    h.run_command = [commands](const std::vector<std::string>& argv) -> Result<int> {
      if (commands != nullptr) commands->push_back(argv);
      return 0;
    };
    return h;
  }

  std::string root, proc, state, evil_path;
};

std::string EvilSha256() { return Sha256Hex(kEvilContent); }

class FileQuarantineTest : public ::testing::Test {
 protected:
  TempDir tmp_;
};

TEST_F(FileQuarantineTest, StopsQuarantinesAndRestoresExactly) {
  QuarantineFixture fx(tmp_.path());
  const auto before = Snapshot(fx.root);
  ASSERT_TRUE(testing::CopyTree(fx.root, tmp_ / "original"));
  std::vector<std::vector<std::string>> commands;
  auto q = FileQuarantine::Open(fx.Settings(), fx.Hooks(&commands));
  ASSERT_TRUE(q.ok()) << q.status().ToString();

  // By SHA-1, as Defender sends it.
  auto sha1 = HashFile(fx.root + fx.evil_path);
  ASSERT_TRUE(sha1.ok());
  auto result = (*q)->StopAndQuarantine({.id = "act-1", .sha1 = sha1->sha1});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const nlohmann::json& r = *result;
  ASSERT_EQ(r["filesQuarantined"].size(), 1u);
  EXPECT_EQ(r["filesQuarantined"][0]["path"], fx.evil_path);
  EXPECT_EQ(r["filesQuarantined"][0]["sha256"], EvilSha256());
  EXPECT_EQ(r["sha256"], EvilSha256());
  std::set<std::pair<int, std::string>> killed;
  for (const auto& p : r["processesKilled"]) killed.insert({p["pid"].get<int>(), p["reason"].get<std::string>()});
  EXPECT_EQ(killed, (std::set<std::pair<int, std::string>>{{100, "executable"}, {101, "descendant"}}));
  std::set<std::pair<std::string, std::string>> removed;
  for (const auto& p : r["persistenceRemoved"]) {
    removed.insert({p["kind"].get<std::string>(), p["location"].get<std::string>()});
  }
  EXPECT_EQ(removed, (std::set<std::pair<std::string, std::string>>{
                         {"cron", "/etc/crontab"},
                         {"systemd", "/etc/systemd/system/evil.service"},
                         {"systemd", "/etc/systemd/system/multi-user.target.wants/evil.service"},
                         {"profile", "/etc/profile.d/x.sh"},
                         {"authorized_keys", "/root/.ssh/authorized_keys"}}));

  // No file, no process, no persistence; the hash is blocked.
  struct stat st {};
  EXPECT_NE(::lstat((fx.root + fx.evil_path).c_str(), &st), 0);
  EXPECT_FALSE(std::filesystem::exists(fx.proc + "/100"));
  EXPECT_FALSE(std::filesystem::exists(fx.proc + "/101"));
  EXPECT_TRUE(std::filesystem::exists(fx.proc + "/102"));
  EXPECT_TRUE(FindPersistence({.root = fx.root}, fx.evil_path).empty());
  EXPECT_TRUE((*q)->Contains(EvilSha256()));
  std::string upper = EvilSha256();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE((*q)->Contains(upper));
  EXPECT_EQ((*q)->Sha256s(), std::vector<std::string>{EvilSha256()});
  EXPECT_TRUE(commands.empty()) << "use_systemctl is false: systemctl must never run";

  // Redelivered action: same result, nothing done twice.
  auto again = (*q)->StopAndQuarantine({.id = "act-1", .sha1 = sha1->sha1});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["filesQuarantined"], r["filesQuarantined"]);

  // The blocked set survives a restart.
  q->reset();
  auto q2 = FileQuarantine::Open(fx.Settings(), fx.Hooks(&commands));
  ASSERT_TRUE(q2.ok());
  EXPECT_TRUE((*q2)->Contains(EvilSha256()));

  auto restored = (*q2)->Restore("act-1");
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ((*restored)["filesRestored"].size(), 1u);
  EXPECT_EQ((*restored)["persistenceRestored"].size(), 5u);
  EXPECT_EQ(Snapshot(fx.root), before);
  EXPECT_EQ(testing::DiffTrees(tmp_ / "original", fx.root), 0);
  EXPECT_FALSE((*q2)->Contains(EvilSha256()));
  EXPECT_TRUE((*q2)->Restore("act-1").ok()) << "undo is idempotent";
  EXPECT_TRUE(commands.empty());
}

TEST_F(FileQuarantineTest, HashThatMatchesNothingFailsWithAClearReason) {
  QuarantineFixture fx(tmp_.path());
  const auto before = Snapshot(fx.root);
  auto q = FileQuarantine::Open(fx.Settings(), fx.Hooks());
  ASSERT_TRUE(q.ok());
  auto r = (*q)->StopAndQuarantine({.id = "act-2", .sha256 = std::string(64, 'a')});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("no file with SHA-256 aaaa"), std::string::npos);
  EXPECT_NE(r.status().message().find("running executables"), std::string::npos);
  EXPECT_EQ(Snapshot(fx.root), before);
  EXPECT_TRUE(std::filesystem::exists(fx.proc + "/100"));
  EXPECT_FALSE((*q)->Contains(std::string(64, 'a')));
}

TEST_F(FileQuarantineTest, PathWithSpacesAndNewlineFoundByHintAndRestored) {
  const std::string weird = "/opt/my app/evil\nname";  // outside every quick-scan location
  QuarantineFixture fx(tmp_.path(), weird);
  auto settings = fx.Settings();
  settings.proc_root = tmp_ / "empty-proc";
  const auto before = Snapshot(fx.root);
  auto q = FileQuarantine::Open(settings, fx.Hooks());
  ASSERT_TRUE(q.ok());
  auto without_hint = (*q)->StopAndQuarantine({.id = "act-3a", .sha256 = EvilSha256()});
  // The cron/unit lines name it in quotes, which the generic candidate scan cannot split:
  // only the hint finds it.
  EXPECT_EQ(without_hint.status().code(), StatusCode::kNotFound);
  auto r = (*q)->StopAndQuarantine({.id = "act-3", .sha256 = EvilSha256(), .path_hint = weird});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["filesQuarantined"][0]["path"], weird);
  struct stat st {};
  EXPECT_NE(::lstat((fx.root + weird).c_str(), &st), 0);
  ASSERT_TRUE((*q)->RestoreBySha256(EvilSha256()).ok());
  EXPECT_EQ(Snapshot(fx.root), before);
}

TEST_F(FileQuarantineTest, EveryCopyIsQuarantined) {
  QuarantineFixture fx(tmp_.path());
  WriteFileAt(fx.root + "/var/tmp/copy", kEvilContent, 0700);
  auto q = FileQuarantine::Open(fx.Settings(), fx.Hooks());
  ASSERT_TRUE(q.ok());
  auto r = (*q)->StopAndQuarantine({.id = "act-4", .sha256 = EvilSha256()});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::set<std::string> paths;
  for (const auto& f : (*r)["filesQuarantined"]) paths.insert(f["path"].get<std::string>());
  EXPECT_EQ(paths, (std::set<std::string>{"/tmp/evil", "/var/tmp/copy"}));
}

TEST_F(FileQuarantineTest, RestoreRefusesWhenADifferentFileTookThePath) {
  QuarantineFixture fx(tmp_.path());
  auto q = FileQuarantine::Open(fx.Settings(), fx.Hooks());
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE((*q)->StopAndQuarantine({.id = "act-5", .sha256 = EvilSha256()}).ok());
  WriteFileAt(fx.root + fx.evil_path, "a new, different file\n");
  const auto before = Snapshot(fx.root);
  auto r = (*q)->Restore("act-5");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(r.status().message().find("different file now exists at /tmp/evil"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(Snapshot(fx.root), before) << "nothing restored, nothing overwritten";
  EXPECT_TRUE((*q)->Contains(EvilSha256()));
  EXPECT_EQ((*q)->Restore("unknown-id").status().code(), StatusCode::kNotFound);
}

TEST_F(FileQuarantineTest, SystemctlOnlyWhenAllowed) {
  QuarantineFixture fx(tmp_.path());
  auto settings = fx.Settings();
  settings.use_systemctl = true;
  std::vector<std::vector<std::string>> commands;
  auto q = FileQuarantine::Open(settings, fx.Hooks(&commands));
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE((*q)->StopAndQuarantine({.id = "act-6", .sha256 = EvilSha256()}).ok());
  using Cmd = std::vector<std::string>;
  EXPECT_EQ(commands, (std::vector<Cmd>{{"systemctl", "is-active", "--quiet", "evil.service"},
                                        {"systemctl", "stop", "evil.service"},
                                        {"systemctl", "disable", "evil.service"},
                                        {"systemctl", "daemon-reload"}}));
  commands.clear();
  ASSERT_TRUE((*q)->Restore("act-6").ok());
  EXPECT_EQ(commands, (std::vector<Cmd>{{"systemctl", "daemon-reload"}, {"systemctl", "start", "evil.service"}}));
}

TEST_F(FileQuarantineTest, UnmodifiedPackageFilesAreNeverQuarantined) {
  // The "malware" is a copy of a package's binary: the copy goes, the package's file and the
  // processes running it stay.
  QuarantineFixture fx(tmp_.path());
  WriteFileAt(fx.root + "/usr/bin/dash", kEvilContent, 0755);
  auto md5 = HashFile(fx.root + "/usr/bin/dash");
  ASSERT_TRUE(md5.ok());
  WriteFileAt(fx.root + "/var/lib/dpkg/info/dash.md5sums", md5->md5 + "  bin/dash\n");
  std::filesystem::create_directories(fx.root + "/bin");
  AddProc(fx.proc, 200, 1, "/usr/bin/dash", {"sh", "-c", "make"});
  AddProc(fx.proc, 201, 200, "/usr/bin/cc", {"cc"});
  auto q = FileQuarantine::Open(fx.Settings(), fx.Hooks());
  ASSERT_TRUE(q.ok());
  auto r = (*q)->StopAndQuarantine({.id = "act-p", .sha256 = EvilSha256()});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ((*r)["filesQuarantined"].size(), 1u);
  EXPECT_EQ((*r)["filesQuarantined"][0]["path"], "/tmp/evil");
  ASSERT_EQ((*r)["filesSkipped"].size(), 1u);
  EXPECT_EQ((*r)["filesSkipped"][0]["path"], "/usr/bin/dash");
  EXPECT_EQ((*r)["filesSkipped"][0]["reason"], "unmodified file of package dash");
  EXPECT_TRUE(std::filesystem::exists(fx.root + "/usr/bin/dash"));
  EXPECT_TRUE(std::filesystem::exists(fx.proc + "/200"));
  EXPECT_TRUE(std::filesystem::exists(fx.proc + "/201"));
  EXPECT_FALSE(std::filesystem::exists(fx.proc + "/100"));

  // Only the package's file has the hash: refused, nothing touched.
  QuarantineFixture only(tmp_ / "only");
  WriteFileAt(only.root + "/usr/bin/dash", kEvilContent, 0755);
  std::filesystem::remove(only.root + "/tmp/evil");
  WriteFileAt(only.root + "/var/lib/dpkg/info/dash.md5sums", md5->md5 + "  usr/bin/dash\n");
  auto q2 = FileQuarantine::Open(only.Settings(), only.Hooks());
  ASSERT_TRUE(q2.ok());
  auto refused = (*q2)->StopAndQuarantine({.id = "act-p2", .sha256 = EvilSha256(), .path_hint = "/usr/bin/dash"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("unmodified file of package dash"), std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(std::filesystem::exists(only.root + "/usr/bin/dash"));
  EXPECT_FALSE((*q2)->Contains(EvilSha256()));
}

// The names of the steps of one full run, from a dry run.
std::vector<std::string> StepNames(const std::string& base) {
  QuarantineFixture fx(base);
  std::vector<std::string> steps;
  auto hooks = fx.Hooks();
  hooks.after_step = [&](const std::string& s) { steps.push_back(s); };
  auto q = FileQuarantine::Open(fx.Settings(), hooks);
  if (!q.ok() || !(*q)->StopAndQuarantine({.id = "dry", .sha256 = EvilSha256()}).ok()) return {};
  if (!(*q)->Restore("dry").ok()) return {};
  return steps;
}

// Runs `body` in a child that is killed (exit without cleanup) right after step `crash_at`.
void RunAndCrashAt(const QuarantineFixture& fx, const std::string& crash_at,
                   const std::function<void(FileQuarantine&)>& body) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto hooks = fx.Hooks();
    hooks.after_step = [&](const std::string& s) {
      if (s == crash_at) ::_exit(9);
    };
    auto q = FileQuarantine::Open(fx.Settings(), hooks);
    if (q.ok()) body(**q);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
}

TEST_F(FileQuarantineTest, CrashAfterAnyStepCompletesOrRollsBackAndNeverLosesTheFile) {
  const std::vector<std::string> steps = StepNames(tmp_ / "dry");
  ASSERT_GE(steps.size(), 10u);
  size_t quarantine_steps = 0;
  for (const auto& s : steps) {
    if (s == "journal:done") break;
    ++quarantine_steps;
  }
  for (size_t i = 0; i <= quarantine_steps; ++i) {
    SCOPED_TRACE("crash after step " + steps[i]);
    const std::string base = tmp_ / ("crash-" + std::to_string(i));
    QuarantineFixture fx(base);
    const auto before = Snapshot(fx.root);
    RunAndCrashAt(fx, steps[i], [](FileQuarantine& q) {
      (void)q.StopAndQuarantine({.id = "act-c", .sha256 = EvilSha256()});
    });
    // Restart: recovery completes (or rolls back) the operation.
    auto q = FileQuarantine::Open(fx.Settings(), fx.Hooks());
    ASSERT_TRUE(q.ok());
    auto record = (*q)->Record("act-c");
    ASSERT_TRUE(record.ok());
    const std::string state = (*record)["state"];
    ASSERT_TRUE(state == "done" || state == "rolledBack") << state;
    if (steps[i] != "journal:done") {
      EXPECT_EQ((*q)->recovered().size(), 1u);
    }
    if (state == "done") {
      struct stat st {};
      EXPECT_NE(::lstat((fx.root + fx.evil_path).c_str(), &st), 0);
      EXPECT_TRUE(FindPersistence({.root = fx.root}, fx.evil_path).empty());
      EXPECT_FALSE(std::filesystem::exists(fx.proc + "/100"));
      EXPECT_TRUE((*q)->Contains(EvilSha256()));
      ASSERT_TRUE((*q)->Restore("act-c").ok());
    }
    // Either way the host can end exactly as it was: the file was never lost.
    EXPECT_EQ(Snapshot(fx.root), before);
  }
}

TEST_F(FileQuarantineTest, CrashDuringRestoreIsCompletedOnRestart) {
  const std::vector<std::string> steps = StepNames(tmp_ / "dry");
  std::vector<std::string> restore_steps;
  bool after_done = false;
  for (const auto& s : steps) {
    if (after_done) restore_steps.push_back(s);
    if (s == "journal:done") after_done = true;
  }
  ASSERT_GE(restore_steps.size(), 3u);
  for (size_t i = 0; i < restore_steps.size(); ++i) {
    SCOPED_TRACE("crash after restore step " + restore_steps[i]);
    const std::string base = tmp_ / ("rcrash-" + std::to_string(i));
    QuarantineFixture fx(base);
    const auto before = Snapshot(fx.root);
    {
      auto q = FileQuarantine::Open(fx.Settings(), fx.Hooks());
      ASSERT_TRUE(q.ok());
      ASSERT_TRUE((*q)->StopAndQuarantine({.id = "act-r", .sha256 = EvilSha256()}).ok());
    }
    RunAndCrashAt(fx, restore_steps[i], [](FileQuarantine& q) { (void)q.Restore("act-r"); });
    auto q = FileQuarantine::Open(fx.Settings(), fx.Hooks());
    ASSERT_TRUE(q.ok());
    EXPECT_EQ((*(*q)->Record("act-r"))["state"], "restored");
    EXPECT_EQ(Snapshot(fx.root), before);
    EXPECT_FALSE((*q)->Contains(EvilSha256()));
  }
}

}  // namespace
}  // namespace quell::agent::quarantine
