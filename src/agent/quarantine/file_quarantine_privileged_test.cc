// Needs root (to read every /proc/<pid>/exe and signal): a real process tree started from a
// temp copy of /bin/sh is stopped and quarantined, then the file is restored identical.
// Only the test's own processes and files under its temp dir are touched; persistence
// locations of the real host are read, never written (nothing there names the temp path).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <filesystem>
#include <thread>

#include "agent/quarantine/file_quarantine.h"
#include "agent/quarantine/testing/tree_snapshot.h"
#include "common/files.h"
#include "common/testing/temp_dir.h"

extern char** environ;

namespace quell::agent::quarantine {
namespace {

using quell::testing::TempDir;

bool Gone(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return true;
  size_t close = stat->rfind(')');
  return close + 2 < stat->size() && ((*stat)[close + 2] == 'Z' || (*stat)[close + 2] == 'X');
}

TEST(FileQuarantinePrivilegedTest, KillsARunningCopyAndItsChildQuarantinesAndRestores) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir tmp;
  const std::string bin = tmp / "evil sh";  // a copy of the shell, with a space in its name
  std::filesystem::copy_file(std::filesystem::canonical("/bin/sh"), bin);
  // Make the hash unique (ELF ignores trailing bytes): an exact copy shares its hash with the
  // host's /bin/sh, which must never be found and quarantined by this test.
  {
    std::ofstream out(bin, std::ios::binary | std::ios::app);
    out << "\nquell-privileged-test-" << tmp.path() << "\n";
  }
  ::chmod(bin.c_str(), 0750);
  struct timespec times[2] = {{1'600'000'000, 5}, {1'550'000'000, 6}};
  ASSERT_EQ(::utimensat(AT_FDCWD, bin.c_str(), times, 0), 0);
  const std::string before = testing::DescribeEntry(bin, false);
  auto hashes = HashFile(bin);
  ASSERT_TRUE(hashes.ok());

  const std::string pidfile = tmp / "child.pid";
  const std::string script = "sleep 300 & echo $! > '" + pidfile + "'; wait";
  std::vector<std::string> args = {bin, "-c", script};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t shell = 0;
  ASSERT_EQ(posix_spawn(&shell, bin.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  pid_t child = 0;
  for (int i = 0; i < 500 && child == 0; ++i) {
    auto text = ReadFile(pidfile);
    if (text.ok() && !text->empty() && text->back() == '\n') child = std::stoi(*text);
    if (child == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(child, 0) << "the shell did not start its child";

  auto q = FileQuarantine::Open(
      {.state_dir = tmp / "state", .root = "/", .proc_root = "/proc", .use_systemctl = false,
       .search_quick_scan_locations = false},
      {.run_command = [](const std::vector<std::string>& argv) -> Result<int> {
        ADD_FAILURE() << "must not run " << argv[0];
        return 1;
      }});
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto result = (*q)->StopAndQuarantine({.id = "priv-1", .sha256 = hashes->sha256});
  ASSERT_TRUE(result.ok()) << result.status().ToString();

  std::map<int, std::string> killed;
  for (const auto& p : (*result)["processesKilled"]) killed[p["pid"].get<int>()] = p["reason"];
  EXPECT_EQ(killed[shell], "executable");
  EXPECT_EQ(killed[child], "descendant");
  int status = 0;
  ASSERT_EQ(::waitpid(shell, &status, 0), shell);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (int i = 0; i < 200 && !Gone(child); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(Gone(child));
  ASSERT_EQ((*result)["filesQuarantined"].size(), 1u) << result->dump(1);
  EXPECT_EQ((*result)["filesQuarantined"][0]["path"], bin);
  struct stat st {};
  EXPECT_NE(::lstat(bin.c_str(), &st), 0);
  EXPECT_TRUE((*q)->Contains(hashes->sha256));

  auto restored = (*q)->Restore("priv-1");
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(testing::DescribeEntry(bin, false), before);  // bytes, owner, mode, mtime
  EXPECT_EQ(HashFile(bin)->sha256, hashes->sha256);
  EXPECT_FALSE((*q)->Contains(hashes->sha256));
}

}  // namespace
}  // namespace quell::agent::quarantine
