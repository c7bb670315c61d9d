#include "agent/collect/process_table.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::collect {
namespace {

namespace fs = std::filesystem;

void Write(const std::string& path, std::string_view text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string StatLine(pid_t pid, std::string_view comm, char state, pid_t ppid, uint64_t start,
                     uint32_t flags = 0x400000) {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
  // stime cutime cstime priority nice threads itrealvalue starttime ...
  return std::to_string(pid) + " (" + std::string(comm) + ") " + state + " " +
         std::to_string(ppid) + " 1 1 0 -1 " + std::to_string(flags) +
         " 0 0 0 0 0 0 0 0 20 0 1 0 " + std::to_string(start) + " 1000 200 0\n";
}

// A fake procfs process. `exe_target` "" leaves exe absent (a zombie).
void FakeProcess(const std::string& proc, pid_t pid, std::string_view comm, pid_t ppid,
                 uint32_t uid, uint32_t euid, std::string_view cmdline,
                 const std::string& exe_target, uint64_t start = 100, uint32_t flags = 0x400000) {
  const std::string base = proc + "/" + std::to_string(pid);
  Write(base + "/stat", StatLine(pid, comm, 'S', ppid, start, flags));
  Write(base + "/status", "Name:\t" + std::string(comm) + "\nUid:\t" + std::to_string(uid) + "\t" +
                              std::to_string(euid) + "\t0\t0\nGid:\t0\t0\t0\t0\n");
  Write(base + "/cmdline", cmdline);
  if (!exe_target.empty()) fs::create_symlink(exe_target, base + "/exe");
  fs::create_symlink("/", base + "/cwd");
}

TEST(ParseProcStatTest, CommWithSpacesAndParens) {
  auto s = ParseProcStat(StatLine(42, "evil) (x y", 'R', 7, 12345, 0x00200040));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->comm, "evil) (x y");
  EXPECT_EQ(s->state, 'R');
  EXPECT_EQ(s->ppid, 7);
  EXPECT_EQ(s->flags, 0x00200040u);
  EXPECT_EQ(s->start_ticks, 12345u);
}

TEST(ParseProcStatTest, RejectsMalformed) {
  EXPECT_FALSE(ParseProcStat("").has_value());
  EXPECT_FALSE(ParseProcStat("1 (x) S 0 1 1").has_value());
  EXPECT_FALSE(ParseProcStat("1 x S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 1").has_value());
}

TEST(ParseStatusUidsTest, RealAndEffective) {
  auto u = ParseStatusUids("Name:\tsu\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1\t1\t1\t1\n");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->first, 1000u);
  EXPECT_EQ(u->second, 0u);
  EXPECT_FALSE(ParseStatusUids("Name:\tx\n").has_value());
}

TEST(SplitCmdlineTest, NulSeparated) {
  EXPECT_EQ(SplitCmdline(std::string_view("a\0b c\0\0d\0", 9)),
            (std::vector<std::string>{"a", "b c", "", "d"}));
  EXPECT_TRUE(SplitCmdline("").empty());
  EXPECT_EQ(SplitCmdline("no-nul"), std::vector<std::string>{"no-nul"});
}

TEST(ParsePasswdNamesTest, FirstEntryWinsAndMalformedSkipped) {
  auto m = ParsePasswdNames("root:x:0:0:root:/root:/bin/bash\n#c:x:5:\nbad line\n"
                            "toor:x:0:0::/:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh");
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], "root");
  EXPECT_EQ(m[1000], "alice");
}

TEST(ParseBootTimeTest, Btime) {
  EXPECT_EQ(ParseBootTime("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"), 1700000000);
  EXPECT_FALSE(ParseBootTime("cpu 1 2 3\n").has_value());
}

TEST(TextSafetyTest, EscapesControlsAndInvalidUtf8) {
  EXPECT_EQ(EscapeForText("a\nb\\c\x1b"), "a\\x0ab\\x5cc\\x1b");
  EXPECT_EQ(EscapeForText("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(EscapeForText("\xff"), "\\xff");
  EXPECT_EQ(ValidUtf8("ok\n\xc3\xa9\xc3"), "ok\n\xc3\xa9\\xc3");
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate is not UTF-8
  // The result always serializes.
  nlohmann::json j = ValidUtf8("\xfe\xff\xc0\xaf");
  EXPECT_NO_THROW((void)j.dump());
}

class FakeProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proc_ = dir_ / "proc";
    Write(proc_ + "/stat", "cpu 1 2 3\nbtime 1700000000\n");
    Write(dir_ / "passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n");
    Write(dir_ / "bin/tool", "the tool binary");
    Write(dir_ / "bin/other", "another binary");
  }
  testing::TempDir dir_;
  std::string proc_;
};

TEST_F(FakeProcTest, ReadsFieldsNamesAndHashes) {
  FakeProcess(proc_, 1, "init", 0, 0, 0, std::string("/sbin/init\0", 11), dir_ / "bin/other");
  FakeProcess(proc_, 20, "tool", 1, 1000, 0, std::string("tool\0-x\0", 8), dir_ / "bin/tool", 250);
  FakeProcess(proc_, 21, "tool", 1, 4242, 4242, std::string("tool\0", 5), dir_ / "bin/tool");
  FakeProcess(proc_, 2, "kthreadd", 0, 0, 0, "", "", 0, 0x00208040);
  fs::create_directories(proc_ + "/99");  // exited between readdir and read: no stat
  fs::create_directories(proc_ + "/self");

  auto list = ListProcesses(proc_, {.passwd_path = dir_ / "passwd"});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].pid, 1);
  EXPECT_EQ((*list)[1].pid, 2);
  const ProcessRecord& tool = (*list)[2];
  EXPECT_EQ(tool.pid, 20);
  EXPECT_EQ(tool.ppid, 1);
  EXPECT_EQ(tool.name, "tool");
  EXPECT_EQ(tool.user, "alice");
  EXPECT_EQ(tool.euser, "root");  // a setuid root process started by alice
  EXPECT_EQ(tool.args, (std::vector<std::string>{"tool", "-x"}));
  EXPECT_EQ(tool.exe, dir_ / "bin/tool");
  EXPECT_FALSE(tool.exe_deleted);
  EXPECT_EQ(tool.exe_sha256, Sha256Hex("the tool binary"));
  EXPECT_EQ(tool.cwd, "/");
  const long hz = ::sysconf(_SC_CLK_TCK);
  EXPECT_EQ(tool.start_time, 1700000000000 + 250 * 1000 / hz);
  EXPECT_EQ((*list)[3].user, "4242");  // not in passwd: numeric
  EXPECT_EQ((*list)[3].exe_sha256, tool.exe_sha256);
  EXPECT_EQ((*list)[0].exe_sha256, Sha256Hex("another binary"));
  EXPECT_TRUE((*list)[1].kernel_thread);
  EXPECT_TRUE((*list)[1].exe_sha256.empty());
  EXPECT_TRUE((*list)[1].exe_hash_error.empty());
}

TEST_F(FakeProcTest, FlagsDeletedExecutable) {
  FakeProcess(proc_, 30, "x", 1, 0, 0, std::string("x\0", 2), "/tmp/.x/payload (deleted)");
  auto list = ListProcesses(proc_);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].exe, "/tmp/.x/payload");
  EXPECT_TRUE((*list)[0].exe_deleted);
  EXPECT_EQ((*list)[0].user, "0");  // no passwd given
  // The fake link cannot be opened; on a real procfs it can (see the /proc tests).
  EXPECT_TRUE((*list)[0].exe_sha256.empty());
  EXPECT_FALSE((*list)[0].exe_hash_error.empty());
}

TEST_F(FakeProcTest, LargeExecutableIsNotHashed) {
  FakeProcess(proc_, 40, "tool", 1, 0, 0, "tool", dir_ / "bin/tool");
  auto list = ListProcesses(proc_, {.max_hash_bytes = 4});
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE((*list)[0].exe_sha256.empty());
  EXPECT_NE((*list)[0].exe_hash_error.find("larger than 4 bytes"), std::string::npos);
}

TEST_F(FakeProcTest, StopHashingStillListsEveryProcess) {
  FakeProcess(proc_, 40, "tool", 1, 0, 0, "tool", dir_ / "bin/tool");
  FakeProcess(proc_, 41, "tool", 1, 0, 0, "tool", dir_ / "bin/other");
  auto list = ListProcesses(proc_, {.stop_hashing = [] { return true; }});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_TRUE((*list)[1].exe_sha256.empty());
  EXPECT_NE((*list)[1].exe_hash_error.find("stopped"), std::string::npos);
}

TEST_F(FakeProcTest, MissingProcRootIsAnError) {
  EXPECT_FALSE(ListProcesses(dir_ / "nope").ok());
}

TEST(ProcessTreeTextTest, IndentsChildrenAndMarksDeleted) {
  std::vector<ProcessRecord> ps(5);
  ps[0] = {.pid = 1, .ppid = 0, .name = "init", .uid_known = true, .euser = "root", .args = {"/sbin/init"}};
  ps[1] = {.pid = 2, .ppid = 0, .name = "kthreadd", .kernel_thread = true, .uid_known = true, .euser = "root"};
  ps[2] = {.pid = 50, .ppid = 1, .name = "sshd", .uid_known = true, .euser = "root", .args = {"sshd:", "alice"}};
  ps[3] = {.pid = 60, .ppid = 50, .name = "payload", .uid_known = true, .euser = "alice",
           .args = {"[kworker/0:1]", "\n99 root fake"}, .exe = "/dev/shm/p", .exe_deleted = true};
  ps[4] = {.pid = 55, .ppid = 1, .name = "cron", .args = {"cron"}};
  EXPECT_EQ(ProcessTreeText(ps),
            "1 root /sbin/init\n"
            "  50 root sshd: alice\n"
            "    60 alice [DELETED EXE: /dev/shm/p] [kworker/0:1] \\x0a99 root fake\n"
            "  55 ? cron\n"
            "2 root [kthreadd]\n");
}

TEST(ProcessTreeTextTest, CycleIsShownNotLost) {
  std::vector<ProcessRecord> ps(2);
  ps[0] = {.pid = 3, .ppid = 4, .args = {"a"}};
  ps[1] = {.pid = 4, .ppid = 3, .args = {"b"}};
  EXPECT_EQ(ProcessTreeText(ps), "3 ? a\n  4 ? b\n");
}

TEST(ProcessesToJsonTest, FieldsAndInvalidUtf8) {
  ProcessRecord p{.pid = 7, .ppid = 1, .name = "n\xff", .state = 'S', .uid_known = true,
                  .uid = 1000, .euid = 0, .user = "alice", .euser = "root", .args = {"a\xfe", "b"},
                  .exe = "/x", .exe_deleted = true, .exe_sha256 = "ab", .start_time = 1700000000000};
  nlohmann::json j = ProcessesToJson({p});
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["pid"], 7);
  EXPECT_EQ(j[0]["name"], "n\\xff");
  EXPECT_EQ(j[0]["cmdline"], nlohmann::json({"a\\xfe", "b"}));
  EXPECT_EQ(j[0]["uid"], 1000);
  EXPECT_EQ(j[0]["euser"], "root");
  EXPECT_EQ(j[0]["exe_deleted"], true);
  EXPECT_EQ(j[0]["start_time"], "2023-11-14T22:13:20.000Z");
  EXPECT_FALSE(j[0].contains("exe_hash_error"));
  EXPECT_NO_THROW((void)j.dump());
}

TEST(ListProcessesRealProcTest, FindsSelfWithExeHash) {
  auto list = ListProcesses("/proc", {.passwd_path = "/etc/passwd"});
  ASSERT_TRUE(list.ok());
  auto self = std::find_if(list->begin(), list->end(),
                           [](const ProcessRecord& p) { return p.pid == ::getpid(); });
  ASSERT_NE(self, list->end());
  EXPECT_EQ(self->ppid, ::getppid());
  EXPECT_EQ(self->uid, ::getuid());
  EXPECT_FALSE(self->exe_deleted);
  EXPECT_EQ(self->exe, fs::read_symlink("/proc/self/exe").string());
  int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto h = HashFd(fd);
  ::close(fd);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(self->exe_sha256, h->sha256);
  EXPECT_GT(self->start_time, 1'600'000'000'000);
}

}  // namespace
}  // namespace quell::agent::collect
