#include "agent/live/live_shell.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>

#include "agent/quarantine/testing/tree_snapshot.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"

namespace quell::agent::live {
namespace {

using Json = nlohmann::json;
using quarantine::testing::Snapshot;
using quarantine::testing::WriteFileAt;
using namespace std::chrono_literals;

struct Ran {
  LiveCommandOutcome outcome;
  std::string text;
};

class LiveShellTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = tmp_ / "data";
    WriteFileAt(data_ + "/a.txt", "hello", 0640);
    WriteFileAt(data_ + "/sub/b.log", "log line\n");
    WriteFileAt(data_ + "/sub/deeper/c.log", "another\n");
    std::filesystem::create_symlink("a.txt", data_ + "/link");
    options_.work_dir = tmp_ / "work";
    options_.collect_root = tmp_ / "root";
    options_.dpkg_info_dir = tmp_ / "dpkg";
    options_.fetch = [this](const std::string& session, const std::string& name, const std::string&,
                            const std::string& dest, std::stop_token) -> Status {
      fetched_session_ = session;
      auto it = library_.find(name);
      if (it == library_.end()) return NotFound("no library file " + name);
      return WriteFileAtomic(dest, it->second);
    };
    options_.send = [this](const std::string& session, const std::string& name,
                           const std::string& path, std::stop_token,
                           const std::function<void(uint64_t, uint64_t)>&) -> Result<SentArtifact> {
      QUELL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
      uploaded_[session + "/" + name] = bytes;
      return SentArtifact{Sha256Hex(bytes), bytes.size()};
    };
  }

  Ran Run(LiveShell& shell, std::vector<std::string> argv, bool json = false,
          std::stop_source* stop = nullptr, const std::string& lib_content = "") {
    LiveCommandRequest req{.session_id = "sess-1", .command_id = ++next_id_, .argv = std::move(argv),
                           .json = json, .requested_by = "alice"};
    if (!lib_content.empty()) {
      req.library_sha256 = Sha256Hex(lib_content);
      req.library_size = lib_content.size();
    }
    Ran r;
    std::stop_source local;
    r.outcome = shell.Execute(req, (stop ? *stop : local).get_token(),
                              [&](std::string_view t) { r.text += t; });
    return r;
  }

  quell::testing::TempDir tmp_;
  std::string data_;
  LiveShellOptions options_;
  std::map<std::string, std::string> library_;
  std::map<std::string, std::string> uploaded_;
  std::string fetched_session_;
  uint32_t next_id_ = 0;
};

TEST_F(LiveShellTest, LsShowsModeOwnerSizeAndSymlinkTargets) {
  LiveShell shell(options_);
  Ran r = Run(shell, {"ls", data_});
  ASSERT_TRUE(r.outcome.status.ok()) << r.outcome.status.ToString();
  EXPECT_NE(r.text.find("mode"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("-rw-r-----"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("root"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("link -> a.txt"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("sub/"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("3 entries"), std::string::npos) << r.text;
  // The a.txt line carries its size.
  const size_t line = r.text.find("a.txt\n");
  ASSERT_NE(line, std::string::npos);
  const std::string a_line = r.text.substr(r.text.rfind('\n', line) + 1, line - r.text.rfind('\n', line));
  EXPECT_NE(a_line.find(" 5 "), std::string::npos) << a_line;
}

TEST_F(LiveShellTest, CdAndPwdResolveRelativePaths) {
  LiveShell shell(options_);
  EXPECT_EQ(Run(shell, {"pwd"}).text, "/\n");
  ASSERT_TRUE(Run(shell, {"cd", data_}).outcome.status.ok());
  EXPECT_EQ(shell.cwd(), data_);
  ASSERT_TRUE(Run(shell, {"cd", "sub/deeper/.."}).outcome.status.ok());
  EXPECT_EQ(Run(shell, {"pwd"}).text, data_ + "/sub\n");
  Ran ls = Run(shell, {"dir"});
  EXPECT_NE(ls.text.find("b.log"), std::string::npos) << ls.text;
  Ran bad = Run(shell, {"cd", "nope"});
  EXPECT_FALSE(bad.outcome.status.ok());
  EXPECT_NE(bad.outcome.status.message().find("No such file"), std::string::npos)
      << bad.outcome.status.message();
  Ran file = Run(shell, {"cd", "b.log"});
  EXPECT_NE(file.outcome.status.message().find("is not a directory"), std::string::npos);
  EXPECT_EQ(shell.cwd(), data_ + "/sub");  // unchanged by the failures
  ASSERT_TRUE(Run(shell, {"cd"}).outcome.status.ok());
  EXPECT_EQ(shell.cwd(), "/");
}

TEST_F(LiveShellTest, JsonOutputIsOneDocument) {
  LiveShell shell(options_);
  Ran r = Run(shell, {"ls", data_}, /*json=*/true);
  ASSERT_TRUE(r.outcome.status.ok());
  Json j = Json::parse(r.text);
  ASSERT_EQ(j["entries"].size(), 3u);
  EXPECT_EQ(j["entries"][0]["name"], "a.txt");
  EXPECT_EQ(j["entries"][0]["size"], 5);
  EXPECT_EQ(j["entries"][0]["mode"], "-rw-r-----");
  EXPECT_EQ(j["entries"][1]["name"], "link");
  EXPECT_EQ(j["entries"][1]["target"], "a.txt");
  EXPECT_EQ(j["entries"][2]["type"], "directory");
  Json pwd = Json::parse(Run(shell, {"pwd"}, true).text);
  EXPECT_EQ(pwd["cwd"], "/");
}

TEST_F(LiveShellTest, FileInfoHasHashesTimesAndOwningPackage) {
  WriteFileAt(options_.dpkg_info_dir + "/other.list", "/\n" + data_ + "/a.txtx\n");
  WriteFileAt(options_.dpkg_info_dir + "/hello-pkg.list", "/\n/usr\n" + data_ + "/a.txt\n");
  WriteFileAt(options_.dpkg_info_dir + "/hello-pkg.md5sums", data_ + "/sub/b.log\n");
  LiveShell shell(options_);
  ASSERT_TRUE(Run(shell, {"cd", data_}).outcome.status.ok());
  Ran r = Run(shell, {"fileinfo", "a.txt"}, true);
  ASSERT_TRUE(r.outcome.status.ok()) << r.outcome.status.ToString();
  Json j = Json::parse(r.text);
  EXPECT_EQ(j["path"], data_ + "/a.txt");
  EXPECT_EQ(j["sha256"], "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(j["sha1"], "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
  EXPECT_EQ(j["md5"], "5d41402abc4b2a76b9719d911017c592");
  EXPECT_EQ(j["size"], 5);
  EXPECT_EQ(j["type"], "file");
  EXPECT_EQ(j["modeOctal"], "0640");
  EXPECT_EQ(j["package"], "hello-pkg");
  EXPECT_TRUE(j.contains("atime") && j.contains("mtime") && j.contains("ctime"));

  Ran text = Run(shell, {"fileinfo", "sub/b.log"});
  ASSERT_TRUE(text.outcome.status.ok());
  EXPECT_NE(text.text.find("package:   (not from a Debian package)"), std::string::npos) << text.text;
  EXPECT_NE(text.text.find("sha256:    " + Sha256Hex("log line\n")), std::string::npos) << text.text;

  Ran link = Run(shell, {"fileinfo", "link"}, true);
  EXPECT_EQ(Json::parse(link.text)["type"], "symlink");
  EXPECT_EQ(Json::parse(link.text)["target"], "a.txt");
}

TEST_F(LiveShellTest, FindFileMatchesGlobsAndStopsAtTheCap) {
  LiveShell shell(options_);
  Ran r = Run(shell, {"findfile", "*.log", data_});
  ASSERT_TRUE(r.outcome.status.ok()) << r.outcome.status.ToString();
  EXPECT_NE(r.text.find(data_ + "/sub/b.log\n"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find(data_ + "/sub/deeper/c.log\n"), std::string::npos) << r.text;
  EXPECT_EQ(r.text.find("a.txt"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("2 matches"), std::string::npos) << r.text;

  Json j = Json::parse(Run(shell, {"findfile", "a.txt", data_}, true).text);
  ASSERT_EQ(j["matches"].size(), 1u);
  EXPECT_EQ(j["matches"][0]["path"], data_ + "/a.txt");

  for (int i = 0; i < 5; ++i) WriteFileAt(data_ + "/many/f" + std::to_string(i) + ".dat", "x");
  options_.max_find_results = 2;
  LiveShell capped(options_);
  Ran c = Run(capped, {"findfile", "f*.dat", data_});
  ASSERT_TRUE(c.outcome.status.ok());
  EXPECT_NE(c.text.find("2 matches (stopped at 2)"), std::string::npos) << c.text;
}

TEST_F(LiveShellTest, FindFileHonoursCancel) {
  for (int i = 0; i < 50; ++i) WriteFileAt(data_ + "/many/d" + std::to_string(i) + "/x.bin", "x");
  LiveShell shell(options_);
  std::stop_source stop;
  LiveCommandRequest req{.session_id = "s", .command_id = 1, .argv = {"findfile", "x.bin", data_}};
  std::string text;
  int matches = 0;
  LiveCommandOutcome out = shell.Execute(req, stop.get_token(), [&](std::string_view t) {
    text += t;
    if (t.find("x.bin") != std::string_view::npos && ++matches == 3) stop.request_stop();
  });
  EXPECT_EQ(out.status.code(), StatusCode::kCancelled) << out.status.ToString();
  EXPECT_EQ(matches, 3) << text;
}

TEST_F(LiveShellTest, FindFileSkipsProc) {
  LiveShell shell(options_);
  Ran r = Run(shell, {"findfile", "status", "/proc"});
  EXPECT_EQ(r.outcome.status.message(), "refused: /proc, /sys and /dev are not searched");
  // A mount of a pseudo filesystem elsewhere is skipped too.
  WriteFileAt(data_ + "/pseudo/status", "x");
  WriteFileAt(data_ + "/real/status", "x");
  WriteFileAt(tmp_ / "mounts", "proc " + data_ + "/pseudo proc rw 0 0\n/dev/sda1 / ext4 rw 0 0\n");
  options_.mounts_path = tmp_ / "mounts";
  LiveShell with_mounts(options_);
  Ran m = Run(with_mounts, {"findfile", "status", data_});
  ASSERT_TRUE(m.outcome.status.ok());
  EXPECT_NE(m.text.find(data_ + "/real/status"), std::string::npos) << m.text;
  EXPECT_EQ(m.text.find(data_ + "/pseudo/status"), std::string::npos) << m.text;
  EXPECT_NE(m.text.find("1 match\n"), std::string::npos) << m.text;
}

TEST_F(LiveShellTest, GetFileUploadsAsCommandArtifactAndRefusesProc) {
  LiveShell shell(options_);
  ASSERT_TRUE(Run(shell, {"cd", data_}).outcome.status.ok());
  Ran r = Run(shell, {"getfile", "sub/b.log"});
  ASSERT_TRUE(r.outcome.status.ok()) << r.outcome.status.ToString();
  const std::string artifact = "command-" + std::to_string(next_id_);
  EXPECT_EQ(r.outcome.artifact_name, artifact);
  EXPECT_EQ(r.outcome.artifact_size, 9u);
  EXPECT_EQ(r.outcome.artifact_sha256, Sha256Hex("log line\n"));
  EXPECT_EQ(uploaded_["sess-1/" + artifact], "log line\n");
  Ran proc = Run(shell, {"getfile", "/proc/self/status"});
  EXPECT_FALSE(proc.outcome.status.ok());
  EXPECT_NE(proc.outcome.status.message().find("/proc"), std::string::npos);
  EXPECT_TRUE(proc.outcome.artifact_name.empty());
}

TEST_F(LiveShellTest, PutFileChecksTheDigestAndKeeps) {
  library_["tool.bin"] = "the real tool";
  LiveShell shell(options_);
  Ran ok = Run(shell, {"putfile", "tool.bin"}, false, nullptr, "the real tool");
  ASSERT_TRUE(ok.outcome.status.ok()) << ok.outcome.status.ToString();
  EXPECT_EQ(fetched_session_, "sess-1");
  EXPECT_EQ(*ReadFile(options_.work_dir + "/files/tool.bin"), "the real tool");
  struct stat st {};
  ::stat((options_.work_dir + "/files/tool.bin").c_str(), &st);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  Ran kept = Run(shell, {"putfile", "tool.bin", "-keep"}, false, nullptr, "the real tool");
  ASSERT_TRUE(kept.outcome.status.ok());
  EXPECT_TRUE(std::filesystem::exists(options_.work_dir + "/kept/tool.bin"));

  // The server's library says one thing, the fetched bytes are another.
  library_["tool.bin"] = "a swapped tool";
  std::filesystem::remove(options_.work_dir + "/files/tool.bin");
  Ran bad = Run(shell, {"putfile", "tool.bin"}, false, nullptr, "the real tool");
  EXPECT_EQ(bad.outcome.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(bad.outcome.status.message().find("does not match the library"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(options_.work_dir + "/files/tool.bin"));

  EXPECT_FALSE(Run(shell, {"putfile", "../evil"}, false, nullptr, "x").outcome.status.ok());
  Ran nodigest = Run(shell, {"putfile", "tool.bin"});
  EXPECT_NE(nodigest.outcome.status.message().find("no digest"), std::string::npos);
}

TEST_F(LiveShellTest, RunPrintsOutputAndFailsOnNonZeroExit) {
  const std::string script = "#!/bin/sh\necho \"out $1\"\necho err >&2\nexit 3\n";
  library_["s.sh"] = script;
  LiveShell shell(options_);
  Ran r = Run(shell, {"run", "s.sh", "hello world"}, false, nullptr, script);
  EXPECT_EQ(r.outcome.status.message(), "exit code 3");
  EXPECT_NE(r.text.find("out hello world\n"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("--- stderr ---\nerr\n"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("exit code 3"), std::string::npos) << r.text;

  Ran semi = Run(shell, {"run", "s.sh", "a;b"}, false, nullptr, script);
  EXPECT_EQ(semi.outcome.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(semi.outcome.status.message().find("';'"), std::string::npos);

  const std::string good = "#!/bin/sh\necho fine\n";
  library_["g.sh"] = good;
  Ran j = Run(shell, {"run", "g.sh"}, true, nullptr, good);
  ASSERT_TRUE(j.outcome.status.ok()) << j.outcome.status.ToString();
  EXPECT_EQ(Json::parse(j.text)["stdout"], "fine\n");
  EXPECT_EQ(Json::parse(j.text)["exitCode"], 0);
}

TEST_F(LiveShellTest, RunIsCancelledByStop) {
  const std::string script = "#!/bin/sh\nsleep 30\n";
  library_["slow.sh"] = script;
  LiveShell shell(options_);
  std::stop_source stop;
  std::jthread canceller([&] {
    std::this_thread::sleep_for(300ms);
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  Ran r = Run(shell, {"run", "slow.sh"}, false, &stop, script);
  EXPECT_EQ(r.outcome.status.code(), StatusCode::kCancelled) << r.outcome.status.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST_F(LiveShellTest, UnknownCommandAndUsage) {
  LiveShell shell(options_);
  EXPECT_NE(Run(shell, {"format", "c:"}).outcome.status.message().find("unknown command"),
            std::string::npos);
  EXPECT_NE(Run(shell, {"fileinfo"}).outcome.status.message().find("usage: fileinfo"),
            std::string::npos);
}

TEST_F(LiveShellTest, ScheduledTasksAndPersistenceListTheRootsCron) {
  WriteFileAt(options_.collect_root + "/etc/crontab", "* * * * * root /tmp/evil.sh --beacon\n");
  LiveShell shell(options_);
  Ran tasks = Run(shell, {"scheduledtasks"});
  ASSERT_TRUE(tasks.outcome.status.ok()) << tasks.outcome.status.ToString();
  EXPECT_NE(tasks.text.find("/tmp/evil.sh --beacon"), std::string::npos) << tasks.text;
  Ran pers = Run(shell, {"persistence"}, true);
  ASSERT_TRUE(pers.outcome.status.ok()) << pers.outcome.status.ToString();
  EXPECT_NE(pers.text.find("/etc/crontab"), std::string::npos) << pers.text;
  // The scratch staging is gone.
  EXPECT_TRUE(std::filesystem::is_empty(options_.work_dir + "/out"));
}

}  // namespace
}  // namespace quell::agent::live
