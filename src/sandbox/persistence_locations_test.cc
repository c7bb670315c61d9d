#include "sandbox/persistence_locations.h"

#include <gtest/gtest.h>

namespace quell::sandbox {
namespace {

TEST(PersistenceLocationTest, NamesEachCategory) {
  EXPECT_EQ(PersistenceLocation("/etc/crontab"), "cron");
  EXPECT_EQ(PersistenceLocation("/etc/cron.d/backdoor"), "cron");
  EXPECT_EQ(PersistenceLocation("/etc/cron.hourly/x"), "cron");
  EXPECT_EQ(PersistenceLocation("/var/spool/cron/crontabs/root"), "cron");
  EXPECT_EQ(PersistenceLocation("/etc/systemd/system/evil.service"), "systemd");
  EXPECT_EQ(PersistenceLocation("/lib/systemd/system/evil.service"), "systemd");
  EXPECT_EQ(PersistenceLocation("/usr/lib/systemd/system/multi-user.target.wants/e.service"),
            "systemd");
  EXPECT_EQ(PersistenceLocation("/home/alice/.config/systemd/user/e.service"), "systemd");
  EXPECT_EQ(PersistenceLocation("/etc/rc.local"), "rc");
  EXPECT_EQ(PersistenceLocation("/etc/init.d/evil"), "rc");
  EXPECT_EQ(PersistenceLocation("/etc/rc3.d/S99evil"), "rc");
  EXPECT_EQ(PersistenceLocation("/etc/rcS.d/S01evil"), "rc");
  EXPECT_EQ(PersistenceLocation("/etc/profile"), "profile");
  EXPECT_EQ(PersistenceLocation("/etc/profile.d/evil.sh"), "profile");
  EXPECT_EQ(PersistenceLocation("/etc/bash.bashrc"), "profile");
  EXPECT_EQ(PersistenceLocation("/root/.bashrc"), "profile");
  EXPECT_EQ(PersistenceLocation("/home/bob/.profile"), "profile");
  EXPECT_EQ(PersistenceLocation("/home/bob/.bash_profile"), "profile");
  EXPECT_EQ(PersistenceLocation("/root/.zshrc"), "profile");
  EXPECT_EQ(PersistenceLocation("/root/.ssh/authorized_keys"), "authorized_keys");
  EXPECT_EQ(PersistenceLocation("/home/bob/.ssh/authorized_keys2"), "authorized_keys");
  EXPECT_EQ(PersistenceLocation("/etc/ld.so.preload"), "ld.so.preload");
  EXPECT_EQ(PersistenceLocation("/etc/udev/rules.d/99-x.rules"), "udev");
  EXPECT_EQ(PersistenceLocation("/root/.config/autostart/x.desktop"), "xdg-autostart");
  EXPECT_EQ(PersistenceLocation("/etc/update-motd.d/99-x"), "motd");
  EXPECT_EQ(PersistenceLocation("/etc/sudoers.d/evil"), "sudoers");
  EXPECT_EQ(PersistenceLocation("/etc/passwd"), "accounts");
}

TEST(PersistenceLocationTest, TidiesThePathFirst) {
  EXPECT_EQ(PersistenceLocation("/etc//cron.d/./x"), "cron");
  EXPECT_EQ(PersistenceLocation("/tmp/../etc/cron.d/x"), "cron");
  EXPECT_EQ(PersistenceLocation("/etc/cron.d/../crontab"), "cron");
  EXPECT_EQ(PersistenceLocation("/etc/cron.d"), "cron");  // the directory itself
}

TEST(PersistenceLocationTest, IgnoresLookAlikesAndOrdinaryPlaces) {
  EXPECT_EQ(PersistenceLocation("/tmp/x"), std::nullopt);
  EXPECT_EQ(PersistenceLocation("/etc/cron."), std::nullopt);
  EXPECT_EQ(PersistenceLocation("/etc/profile.dx/a"), std::nullopt);
  EXPECT_EQ(PersistenceLocation("/etc/systemd/systemx"), std::nullopt);
  EXPECT_EQ(PersistenceLocation("/etc/hosts"), std::nullopt);
  EXPECT_EQ(PersistenceLocation("/etc/rc3.dx"), std::nullopt);
  EXPECT_EQ(PersistenceLocation("/tmp/root/.bashrc"), std::nullopt);
  EXPECT_EQ(PersistenceLocation("/home/.bashrc"), std::nullopt);  // no user directory
  EXPECT_EQ(PersistenceLocation("/root/.bashrc.bak/x"), std::nullopt);
  EXPECT_EQ(PersistenceLocation("/root/.ssh/known_hosts"), std::nullopt);
  EXPECT_EQ(PersistenceLocation("etc/crontab"), std::nullopt);  // not absolute
  EXPECT_EQ(PersistenceLocation(""), std::nullopt);
}

}  // namespace
}  // namespace quell::sandbox
