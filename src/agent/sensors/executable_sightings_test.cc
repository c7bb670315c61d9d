#include "agent/sensors/executable_sightings.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/testing/temp_dir.h"

namespace quell::agent::sensors {
namespace {

namespace fs = std::filesystem;

class ExecutableSightingsTest : public ::testing::Test {
 protected:
  // A fake /proc/<pid> whose exe is `target` and whose mount namespace is `ns`.
  void AddProcess(const std::string& pid, const std::string& target,
                  const std::string& ns = "mnt:[1]") {
    fs::create_directories(proc_ + "/" + pid + "/ns");
    fs::create_symlink(target, proc_ + "/" + pid + "/exe");
    fs::create_symlink(ns, proc_ + "/" + pid + "/ns/mnt");
  }

  std::string File(const std::string& name, const std::string& content) {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  SightingsOptions Options() {
    return {.proc_root = proc_, .own_mount_namespace = "mnt:[1]",
            .report_again_after_ms = 60'000};
  }

  quell::testing::TempDir dir_;
  std::string proc_ = dir_.path() + "/proc";
  FakeClock clock_;
};

TEST_F(ExecutableSightingsTest, ReportsEachRunningFileOnceWithItsHashes) {
  std::string abc = File("abc", "abc");
  AddProcess("100", abc);
  AddProcess("101", abc);  // a second process of the same file at the same path
  AddProcess("200", File("other-ns", "x"), "mnt:[2]");  // another mount namespace
  fs::create_directories(proc_ + "/self");
  ExecutableSightings sightings(Options(), clock_);

  auto first = sightings.Collect();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].path(), abc);
  EXPECT_EQ(first[0].sha256(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(first[0].sha1(), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(first[0].md5(), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(first[0].source(), "exec");
  // Nothing new: nothing to report, until the reporting period has passed.
  EXPECT_TRUE(sightings.Collect().empty());
  clock_.Advance(60'001);
  EXPECT_EQ(sightings.Collect().size(), 1u);
}

TEST_F(ExecutableSightingsTest, AChangedFileIsHashedAndReportedAgain) {
  std::string path = File("tool", "version 1");
  AddProcess("100", path);
  ExecutableSightings sightings(Options(), clock_);
  auto v1 = sightings.Collect();
  ASSERT_EQ(v1.size(), 1u);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "version 2, longer";
  auto v2 = sightings.Collect();
  ASSERT_EQ(v2.size(), 1u);
  EXPECT_NE(v2[0].sha256(), v1[0].sha256());
}

TEST_F(ExecutableSightingsTest, BoundsTheHashingOfOnePassAndForgetsWhatStopped) {
  for (int i = 0; i < 5; ++i) {
    AddProcess(std::to_string(100 + i), File("f" + std::to_string(i), std::to_string(i)));
  }
  SightingsOptions options = Options();
  options.max_new_files_per_pass = 2;
  ExecutableSightings sightings(options, clock_);
  EXPECT_EQ(sightings.Collect().size(), 2u);
  EXPECT_EQ(sightings.Collect().size(), 2u);
  EXPECT_EQ(sightings.Collect().size(), 1u);
  EXPECT_EQ(sightings.known_files(), 5u);
  fs::remove_all(proc_);
  fs::create_directories(proc_);
  clock_.Advance(60'001);
  EXPECT_TRUE(sightings.Collect().empty());
  EXPECT_EQ(sightings.known_files(), 0u);
}

TEST(ExecutableSightingsRealProcTest, SeesThisTestRunning) {
  ExecutableSightings sightings({}, SystemClock::Instance());
  std::string self = fs::read_symlink("/proc/self/exe");
  bool found = false;
  for (const auto& s : sightings.Collect()) found |= s.path() == self;
  EXPECT_TRUE(found) << self;
}

}  // namespace
}  // namespace quell::agent::sensors
