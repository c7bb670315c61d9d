// The runtime-state collectors against a fixture host (a root tree and a fake procfs), and the
// process collector against the real /proc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stop_token>
#include <thread>
#include <vector>

#include "agent/collect/collectors.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

extern char** environ;

namespace quell::agent::collect {
namespace {

namespace fs = std::filesystem;

void Write(const std::string& path, std::string_view text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string Utmp(short type, std::string_view user, std::string_view line, std::string_view host,
                 pid_t pid, int32_t sec) {
  struct utmp u;
  std::memset(&u, 0, sizeof u);
  u.ut_type = type;
  u.ut_pid = pid;
  std::memcpy(u.ut_user, user.data(), std::min(user.size(), sizeof u.ut_user));
  std::memcpy(u.ut_line, line.data(), std::min(line.size(), sizeof u.ut_line));
  std::memcpy(u.ut_host, host.data(), std::min(host.size(), sizeof u.ut_host));
  u.ut_tv.tv_sec = sec;
  return std::string(reinterpret_cast<const char*>(&u), sizeof u);
}

void FakeProcess(const std::string& proc, pid_t pid, std::string_view comm, pid_t ppid, uint32_t uid,
                 std::string_view cmdline, const std::string& exe_target) {
  const std::string base = proc + "/" + std::to_string(pid);
  Write(base + "/stat", std::to_string(pid) + " (" + std::string(comm) + ") S " + std::to_string(ppid) +
                            " 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 500 1000 200 0\n");
  Write(base + "/status", "Uid:\t" + std::to_string(uid) + "\t" + std::to_string(uid) + "\t0\t0\n");
  Write(base + "/cmdline", cmdline);
  Write(base + "/comm", std::string(comm) + "\n");
  fs::create_symlink(exe_target, base + "/exe");
  fs::create_symlink("/", base + "/cwd");
  fs::create_directories(base + "/fd");
}

class RuntimeCollectorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "root";
    proc_ = dir_ / "proc";
    Write(root_ + "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n");
    Write(root_ + "/usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n");
    fs::create_symlink("../usr/lib/os-release", root_ + "/etc/os-release");
    Write(root_ + "/etc/hostname", "web-01\n");
    Write(root_ + "/etc/hosts", "127.0.0.1 localhost\n203.0.113.66 update.example.com\n");
    // The usual resolv.conf: an absolute link into /run, which must resolve inside the root.
    Write(root_ + "/run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53\n");
    fs::create_symlink("/run/systemd/resolve/stub-resolv.conf", root_ + "/etc/resolv.conf");
    Write(root_ + "/bin/sshd", "sshd binary");
    Write(root_ + "/run/utmp", Utmp(BOOT_TIME, "reboot", "~", "6.1.0", 0, 1700000000) +
                                   Utmp(USER_PROCESS, "alice", "pts/0", "198.51.100.7", 4242, 1700000100) +
                                   Utmp(DEAD_PROCESS, "", "pts/1", "", 4000, 1700000050));
    Write(root_ + "/var/log/wtmp", Utmp(BOOT_TIME, "reboot", "~", "6.1.0", 0, 1700000000) +
                                       Utmp(USER_PROCESS, "alice", "pts/0", "198.51.100.7", 4242, 1700000100) +
                                       Utmp(USER_PROCESS, "bob", "pts/1", "192.0.2.1", 4300, 1700000200) +
                                       std::string(100, 'x'));  // a torn last record

    Write(proc_ + "/stat", "cpu 1 2 3\nbtime 1700000000\n");
    FakeProcess(proc_, 1, "init", 0, 0, std::string("/sbin/init\0", 11), root_ + "/bin/sshd");
    FakeProcess(proc_, 700, "sshd", 1, 0, std::string("sshd: alice\0", 12), root_ + "/bin/sshd");
    FakeProcess(proc_, 812, "kworkerd", 700, 1000, std::string("[kworker/1:2]\0", 14),
                "/dev/shm/.k (deleted)");
    fs::create_symlink("socket:[5001]", proc_ + "/700/fd/3");
    fs::create_symlink("socket:[5002]", proc_ + "/812/fd/4");
    Write(proc_ + "/net/tcp",
          "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
          "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1\n"
          "   1: 0A00000A:A2C4 420071CB:01BB 01 00000000:00000000 00:00000000 00000000  1000        0 5002 1\n");
    Write(proc_ + "/net/udp",
          "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
          "   5: 00000000:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 5003 2 0 0\n");
    Write(proc_ + "/version", "Linux version 6.1.0-13-amd64 (gcc 12.2.0)\n");
    Write(proc_ + "/uptime", "93784.50 180000.00\n");
    Write(proc_ + "/sys/kernel/hostname", "web-01-renamed\n");
    Write(proc_ + "/sys/kernel/tainted", "4096\n");
    Write(proc_ + "/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1\n");
    Write(proc_ + "/self/mountinfo", "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
    Write(proc_ + "/modules", "diamorphine 16384 0 - Live 0x0000000000000000 (OE)\n");
    Write(proc_ + "/cpuinfo",
          "processor\t: 0\nmodel name\t: Test CPU @ 2.0GHz\nflags\t\t: fpu sse2\n\n"
          "processor\t: 1\nmodel name\t: Test CPU @ 2.0GHz\nflags\t\t: fpu sse2\n\n");
    Write(proc_ + "/meminfo", "MemTotal:        2048000 kB\n");

    sources_ = {.root = root_, .proc_root = proc_, .run_commands = false};
    auto staging = PackageStaging::Create(dir_ / "staging", CollectLimits{}, stop_.get_token());
    ASSERT_TRUE(staging.ok()) << staging.status().ToString();
    staging_ = std::move(*staging);
  }

  std::string Artifact(const std::string& topic, const std::string& name) {
    auto text = ReadFile(staging_->dir() + "/" + topic + "/" + name);
    EXPECT_TRUE(text.ok()) << topic << "/" << name << ": " << text.status().ToString();
    return text.ok() ? *text : "";
  }
  // The staged artifact <topic>/<name>; fails the test when there is none.
  StagedArtifact Staged(const std::string& topic, const std::string& name) {
    for (const StagedArtifact& a : staging_->artifacts()) {
      if (a.topic == topic && a.name == name) return a;
    }
    ADD_FAILURE() << topic << "/" << name << " was not staged";
    return {};
  }
  // Every staged file whose content holds `needle`.
  std::vector<std::string> StagedFilesHolding(std::string_view needle) {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(staging_->dir())) {
      if (!e.is_regular_file()) continue;
      auto text = ReadFile(e.path().string());
      if (!text.ok() || text->find(needle) != std::string::npos) out.push_back(e.path().string());
    }
    return out;
  }
  std::string Failures() {
    std::string out;
    for (const CollectFailure& f : staging_->failures()) out += f.topic + "|" + f.what + "|" + f.reason + "\n";
    return out;
  }

  testing::TempDir dir_;
  std::string root_, proc_;
  CollectSources sources_;
  std::stop_source stop_;
  std::unique_ptr<PackageStaging> staging_;
};

TEST_F(RuntimeCollectorsTest, Processes) {
  CollectProcesses(sources_, *staging_);
  EXPECT_EQ(Failures(), "");
  auto json = nlohmann::json::parse(Artifact("Processes", "processes.json"));
  ASSERT_EQ(json.size(), 3u);
  EXPECT_EQ(json[1]["pid"], 700);
  EXPECT_EQ(json[1]["user"], "root");
  EXPECT_EQ(json[1]["exe_sha256"], Sha256Hex("sshd binary"));
  EXPECT_EQ(json[2]["cmdline"], nlohmann::json({"[kworker/1:2]"}));
  EXPECT_EQ(json[2]["user"], "alice");
  EXPECT_EQ(json[2]["exe"], "/dev/shm/.k");
  EXPECT_EQ(json[2]["exe_deleted"], true);
  EXPECT_EQ(json[2]["start_time"], FormatIso8601(1700000000000 + 500 * 1000 / ::sysconf(_SC_CLK_TCK)));
  EXPECT_EQ(Artifact("Processes", "process_tree.txt"),
            "1 root /sbin/init\n"
            "  700 root sshd: alice\n"
            "    812 alice [DELETED EXE: /dev/shm/.k] [kworker/1:2]\n");
}

// A key in one process's arguments costs only that argument: the whole process list and tree
// are in the package, the key is not.
TEST_F(RuntimeCollectorsTest, ProcessWithKeyInArgvLosesOnlyTheKey) {
  const std::string key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAARGVNSECRETBODY\n"
      "-----END OPENSSH PRIVATE KEY-----";
  FakeProcess(proc_, 900, "sleep", 1, 1000, std::string("sleep\0", 6) + key + std::string("\0", 1),
              root_ + "/bin/sshd");
  CollectProcesses(sources_, *staging_);
  EXPECT_EQ(Failures(), "");
  auto json = nlohmann::json::parse(Artifact("Processes", "processes.json"));
  ASSERT_EQ(json.size(), 4u);
  EXPECT_EQ(json[3]["pid"], 900);
  EXPECT_EQ(json[3]["cmdline"], nlohmann::json({"sleep", "[removed by Quell: a private key]"}));
  EXPECT_EQ(json[3]["exe_sha256"], Sha256Hex("sshd binary"));  // still identifiable
  const std::string tree = Artifact("Processes", "process_tree.txt");
  for (const char* line : {"1 root /sbin/init\n", "  700 root sshd: alice\n",
                           "    812 alice [DELETED EXE: /dev/shm/.k] [kworker/1:2]\n",
                           "[removed by Quell: a line holding a private key]\n"}) {
    EXPECT_NE(tree.find(line), std::string::npos) << line << " not in\n" << tree;
  }
  EXPECT_EQ(StagedFilesHolding("NSECRETBODY"), std::vector<std::string>{});
  EXPECT_EQ(StagedFilesHolding("-----BEGIN OPENSSH"), std::vector<std::string>{});
  EXPECT_EQ(Staged("Processes", "processes.json").secrets_removed, 1u);
  EXPECT_EQ(Staged("Processes", "process_tree.txt").secrets_removed, 1u);
}

TEST_F(RuntimeCollectorsTest, Network) {
  CollectNetwork(sources_, *staging_);
  EXPECT_EQ(Failures(), "");
  auto json = nlohmann::json::parse(Artifact("Network connections", "sockets.json"));
  ASSERT_EQ(json.size(), 3u);
  EXPECT_EQ(json[1]["remote_address"], "203.113.0.66");
  EXPECT_EQ(json[1]["remote_port"], 443);
  EXPECT_EQ(json[1]["owners"], nlohmann::json::parse(R"([{"pid": 812, "name": "kworkerd"}])"));
  const std::string all = Artifact("Network connections", "connections.txt");
  EXPECT_NE(all.find("10.0.0.10:41668  203.113.0.66:443  ESTABLISHED  1000  812/kworkerd"),
            std::string::npos) << all;
  EXPECT_EQ(Artifact("Network connections", "listening_ports.txt"),
            "PROTO  LOCAL         REMOTE     STATE   UID   PID/NAME\n"
            "tcp    0.0.0.0:22    0.0.0.0:*  LISTEN  0     700/sshd\n"
            "udp    0.0.0.0:8080  0.0.0.0:*  UNCONN  1000  -\n");
  EXPECT_EQ(Artifact("Network connections", "resolv.conf"), "nameserver 127.0.0.53\n");
  EXPECT_EQ(Artifact("Network connections", "hosts"), "127.0.0.1 localhost\n203.0.113.66 update.example.com\n");
}

TEST_F(RuntimeCollectorsTest, LinkOutOfTheRootStaysInside) {
  fs::remove(root_ + "/etc/resolv.conf");
  fs::create_symlink("../../../../../../etc/hostname", root_ + "/etc/resolv.conf");
  CollectNetwork(sources_, *staging_);
  // Resolved as the host would see it: /etc/hostname of the root, never the real host's file.
  EXPECT_EQ(Artifact("Network connections", "resolv.conf"), "web-01\n");
}

TEST_F(RuntimeCollectorsTest, Logins) {
  // Failed-login user names are chosen by whoever connects: one looks like a password hash,
  // one merely mentions "PRIVATE KEY-----" (not a key: it must stay visible).
  constexpr char kHashUser[] = "r:$6$saltsalt$HASHHASHHASHHASH1";
  Write(root_ + "/var/log/btmp", Utmp(LOGIN_PROCESS, "admin", "ssh:notty", "203.0.113.9", 5000, 1700000300) +
                                     Utmp(LOGIN_PROCESS, kHashUser, "ssh:notty", "203.0.113.9",
                                          5001, 1700000301) +
                                     Utmp(LOGIN_PROCESS, "x PRIVATE KEY-----", "ssh:notty", "203.0.113.9",
                                          5002, 1700000302));
  CollectLogins(sources_, *staging_);
  EXPECT_EQ(Failures(), "");
  const std::string sessions = Artifact("Logins", "current_sessions.txt");
  EXPECT_NE(sessions.find("2023-11-14T22:15:00.000Z  USER_PROCESS  alice  pts/0  198.51.100.7"), std::string::npos)
      << sessions;
  EXPECT_EQ(sessions.find("BOOT_TIME"), std::string::npos);
  const std::string recent = Artifact("Logins", "recent_logins.txt");
  EXPECT_LT(recent.find("bob"), recent.find("alice")) << recent;  // newest first
  EXPECT_NE(recent.find("BOOT_TIME"), std::string::npos);
  EXPECT_NE(recent.find("3 records"), std::string::npos) << recent;

  const std::string failed = Artifact("Logins", "failed_logins.txt");
  EXPECT_NE(failed.find("3 records"), std::string::npos) << failed;
  EXPECT_NE(failed.find("admin"), std::string::npos) << failed;
  EXPECT_NE(failed.find("x PRIVATE KEY-----"), std::string::npos) << failed;
  EXPECT_NE(failed.find("[removed by Quell: a line holding a password hash]\n"), std::string::npos) << failed;
  EXPECT_EQ(Staged("Logins", "failed_logins.txt").secrets_removed, 1u);
  auto json = nlohmann::json::parse(Artifact("Logins", "logins.json"));
  EXPECT_EQ(json["current_sessions"]["records"].size(), 1u);
  EXPECT_EQ(json["recent_logins"]["records"][0]["user"], "bob");
  EXPECT_EQ(json["failed_logins"]["records_in_file"], 3);
  const auto& records = json["failed_logins"]["records"];  // newest first
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["user"], "x PRIVATE KEY-----");
  EXPECT_EQ(records[1]["user"], "[removed by Quell: a password hash]");
  EXPECT_EQ(records[1]["host"], "203.0.113.9");  // the rest of the record stays
  EXPECT_EQ(records[2]["user"], "admin");
  EXPECT_EQ(Staged("Logins", "logins.json").secrets_removed, 1u);
  EXPECT_EQ(StagedFilesHolding("HASHHASHHASH"), std::vector<std::string>{});
}

TEST_F(RuntimeCollectorsTest, LoginsWithoutBtmpAndWithLegacyUtmp) {
  fs::create_directories(root_ + "/var/run");
  fs::rename(root_ + "/run/utmp", root_ + "/var/run/utmp");
  CollectLogins(sources_, *staging_);
  EXPECT_EQ(Failures(), "");  // no btmp is normal
  EXPECT_NE(Artifact("Logins", "current_sessions.txt").find("alice"), std::string::npos);
  EXPECT_FALSE(fs::exists(staging_->dir() + "/Logins/failed_logins.txt"));
  EXPECT_FALSE(nlohmann::json::parse(Artifact("Logins", "logins.json")).contains("failed_logins"));
}

TEST_F(RuntimeCollectorsTest, SystemInformation) {
  CollectSystemInformation(sources_, *staging_);
  EXPECT_EQ(Failures(), "");
  EXPECT_NE(Artifact("System Information", "os-release").find("bookworm"), std::string::npos);
  EXPECT_EQ(Artifact("System Information", "kernel_version.txt"), "Linux version 6.1.0-13-amd64 (gcc 12.2.0)\n");
  EXPECT_EQ(Artifact("System Information", "uptime.txt"),
            "up 1 days, 02:03:04 (93784.50 180000.00)\nbooted 2023-11-14T22:13:20.000Z\n");
  EXPECT_EQ(Artifact("System Information", "hostname.txt"),
            "running: web-01-renamed\nconfigured (/etc/hostname): web-01\n");
  EXPECT_NE(Artifact("System Information", "mountinfo.txt").find(" - ext4 /dev/sda1"), std::string::npos);
  EXPECT_NE(Artifact("System Information", "modules.txt").find("diamorphine"), std::string::npos);
  EXPECT_EQ(Artifact("System Information", "cpuinfo_summary.txt"),
            "processors: 2\nmodel: Test CPU @ 2.0GHz (x2)\nflags: fpu sse2\n");
  EXPECT_EQ(Artifact("System Information", "meminfo.txt"), "MemTotal:        2048000 kB\n");
  EXPECT_EQ(Artifact("System Information", "kernel_tainted.txt"), "4096\n");
}

TEST_F(RuntimeCollectorsTest, EmptyHostRecordsFailuresAndGoesOn) {
  sources_ = {.root = dir_ / "empty", .proc_root = dir_ / "noproc", .run_commands = false};
  CollectProcesses(sources_, *staging_);
  CollectNetwork(sources_, *staging_);
  CollectLogins(sources_, *staging_);
  CollectSystemInformation(sources_, *staging_);
  EXPECT_TRUE(staging_->artifacts().empty());
  const std::string failures = Failures();
  for (const char* what : {"Processes|", "Network connections|", "/etc/resolv.conf", "Logins|",
                           "/var/log/wtmp", "System Information|", "/version"}) {
    EXPECT_NE(failures.find(what), std::string::npos) << what << " not in\n" << failures;
  }
}

// The real procfs: the test process itself, and a child whose binary was deleted after exec.
TEST(RealProcCollectorTest, SelfAndDeletedExecutable) {
  testing::TempDir dir;
  const std::string copy = dir / "sleepy";
  fs::copy_file("/bin/sleep", copy);
  fs::permissions(copy, fs::perms::owner_all);
  auto original = ReadFile(copy);
  ASSERT_TRUE(original.ok());

  pid_t child = 0;
  char arg0[] = "sleepy", arg1[] = "30";
  char* argv[] = {arg0, arg1, nullptr};
  ASSERT_EQ(::posix_spawn(&child, copy.c_str(), nullptr, nullptr, argv, environ), 0);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{child};
  // posix_spawn may return before the exec: wait until the child runs the copy.
  const std::string link = "/proc/" + std::to_string(child) + "/exe";
  for (int i = 0; i < 200 && fs::read_symlink(link).string() != copy; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(fs::read_symlink(link).string(), copy);
  fs::remove(copy);

  std::stop_source stop;
  auto staging = PackageStaging::Create(dir / "staging", CollectLimits{}, stop.get_token());
  ASSERT_TRUE(staging.ok());
  CollectProcesses({.root = "/", .proc_root = "/proc", .run_commands = false}, **staging);
  auto text = ReadFile((*staging)->dir() + "/Processes/processes.json");
  ASSERT_TRUE(text.ok());
  auto json = nlohmann::json::parse(*text);
  auto find = [&](pid_t pid) {
    return std::find_if(json.begin(), json.end(), [&](const nlohmann::json& p) { return p["pid"] == pid; });
  };

  auto self = find(::getpid());
  ASSERT_NE(self, json.end());
  int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto self_hash = HashFd(fd);
  ::close(fd);
  ASSERT_TRUE(self_hash.ok());
  EXPECT_EQ((*self)["exe_sha256"], self_hash->sha256);
  EXPECT_EQ((*self)["exe_deleted"], false);

  auto sleepy = find(child);
  ASSERT_NE(sleepy, json.end());
  EXPECT_EQ((*sleepy)["exe"], copy);
  EXPECT_EQ((*sleepy)["exe_deleted"], true);
  EXPECT_EQ((*sleepy)["exe_sha256"], Sha256Hex(*original));  // hashed although deleted
  EXPECT_EQ((*sleepy)["cmdline"], nlohmann::json({"sleepy", "30"}));
  auto tree = ReadFile((*staging)->dir() + "/Processes/process_tree.txt");
  ASSERT_TRUE(tree.ok());
  EXPECT_NE(tree->find(std::to_string(child) + " "), std::string::npos);
  EXPECT_NE(tree->find("[DELETED EXE: " + copy + "] sleepy 30"), std::string::npos) << *tree;
}

}  // namespace
}  // namespace quell::agent::collect
