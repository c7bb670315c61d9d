#include "agent/app/inventory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quell::agent {
namespace {

using ::testing::ElementsAre;

TEST(InventoryTest, ParsesDebianOsRelease) {
  OsRelease os = ParseOsRelease(R"os(PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
# a comment
ID=debian
HOME_URL="https://www.debian.org/"
)os");
  EXPECT_EQ(os.id, "debian");
  EXPECT_EQ(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
}

TEST(InventoryTest, OsReleaseQuotingAndGarbage) {
  OsRelease os = ParseOsRelease("garbage line\nID='alpine'\nPRETTY_NAME=\"A \\\"quoted\\\" one\"");
  EXPECT_EQ(os.id, "alpine");
  EXPECT_EQ(os.pretty_name, "A \"quoted\" one");
  EXPECT_EQ(ParseOsRelease("").id, "");
}

TEST(InventoryTest, AddressesIpv4FirstWithoutLoopbackOrLinkLocal) {
  EXPECT_THAT(OrderAddresses({"fd00::2", "fe80::1", "127.0.0.1", "10.0.0.2", "::1",
                              "2001:db8::5", "192.168.1.4"}),
              ElementsAre("10.0.0.2", "192.168.1.4", "fd00::2", "2001:db8::5"));
}

TEST(InventoryTest, CollectsThisHost) {
  auto inv = CollectInventory("override-name");
  EXPECT_EQ(inv.hostname(), "override-name");
  EXPECT_EQ(inv.os_platform(), "Linux");
  EXPECT_EQ(inv.agent_version(), QUELL_VERSION);
  EXPECT_FALSE(inv.kernel_version().empty());
  EXPECT_FALSE(inv.architecture().empty());
  EXPECT_FALSE(CollectInventory("").hostname().empty());
}

}  // namespace
}  // namespace quell::agent
