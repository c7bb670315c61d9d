#include "sandbox/sandbox_init.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "common/testing/temp_dir.h"

namespace quell::sandbox {
namespace {

const MountStep* Find(const SandboxRootPlan& p, const std::string& target) {
  for (const MountStep& m : p.mounts) {
    if (m.target == target) return &m;
  }
  return nullptr;
}

TEST(SandboxRootPlanTest, SystemReadOnlyWritablePlacesEmptySecretsHidden) {
  testing::TempDir host;
  for (const char* d :
       {"/usr", "/usr/bin", "/etc", "/var", "/var/tmp", "/var/lib", "/var/lib/quell", "/lib64"}) {
    ::mkdir((host.path() + d).c_str(), 0755);
  }
  ::symlink("usr/bin", (host / "bin").c_str());
  std::ofstream(host / "etc/resolv.conf") << "nameserver 8.8.8.8\n";

  SandboxRootPlan p = PlanSandboxRoot("/scratch", host.path());
  EXPECT_EQ(p.root, "/scratch/root");
  ASSERT_NE(Find(p, "/usr"), nullptr);
  EXPECT_EQ(Find(p, "/usr")->kind, MountStep::Kind::kBindReadOnly);
  EXPECT_EQ(Find(p, "/usr")->source, host.path() + "/usr");
  EXPECT_EQ(Find(p, "/lib64")->kind, MountStep::Kind::kBindReadOnly);
  ASSERT_NE(Find(p, "/bin"), nullptr);
  EXPECT_EQ(Find(p, "/bin")->kind, MountStep::Kind::kSymlink);
  EXPECT_EQ(Find(p, "/bin")->source, "usr/bin");
  EXPECT_EQ(Find(p, "/opt"), nullptr);  // not on this host
  // The analysis host's own state is replaced by an empty directory.
  ASSERT_NE(Find(p, "/var/lib/quell"), nullptr);
  EXPECT_EQ(Find(p, "/var/lib/quell")->source, "/scratch/empty");
  // resolv.conf points at the fake resolver.
  ASSERT_NE(Find(p, "/etc/resolv.conf"), nullptr);
  EXPECT_EQ(Find(p, "/etc/resolv.conf")->source, p.resolv_conf);
  // Writable places come from scratch, mounted after the system trees they cover.
  for (const char* w : {"/tmp", "/var/tmp", "/root", "/home", "/run", "/dev/shm", "/analysis"}) {
    const MountStep* m = Find(p, w);
    ASSERT_NE(m, nullptr) << w;
    EXPECT_EQ(m->kind, MountStep::Kind::kBindWritable) << w;
    EXPECT_TRUE(m->source.starts_with("/scratch/rw/")) << m->source;
    EXPECT_TRUE(std::any_of(p.writable.begin(), p.writable.end(),
                            [&](const WritableDir& d) { return d.sandbox_path == w; }));
  }
  EXPECT_GT(Find(p, "/var/tmp") - p.mounts.data(), Find(p, "/var") - p.mounts.data());
  for (const char* d : {"/proc", "/dev", "/srv", "/mnt", "/media"}) {
    EXPECT_NE(std::find(p.skeleton_dirs.begin(), p.skeleton_dirs.end(), d), p.skeleton_dirs.end())
        << d;
  }
}

TEST(SandboxRootPlanTest, NothingFromTheHostButWhatIsListed) {
  testing::TempDir host;
  for (const char* d : {"/usr", "/home", "/srv", "/data", "/root"}) {
    ::mkdir((host.path() + d).c_str(), 0755);
  }
  SandboxRootPlan p = PlanSandboxRoot("/s", host.path());
  for (const MountStep& m : p.mounts) {
    if (m.kind != MountStep::Kind::kBindReadOnly || !m.source.starts_with(host.path())) continue;
    EXPECT_EQ(m.target, "/usr") << "host tree exposed: " << m.source;
  }
}

}  // namespace
}  // namespace quell::sandbox
