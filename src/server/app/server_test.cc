#include "server/app/server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/testing/temp_dir.h"

namespace quell::server {
namespace {

TEST(ListenAddressTest, ParsesHostPortForms) {
  EXPECT_EQ(ParseListenAddress("127.0.0.1:8443").value(), std::make_pair(std::string("127.0.0.1"), uint16_t{8443}));
  EXPECT_EQ(ParseListenAddress("[::1]:0").value(), std::make_pair(std::string("::1"), uint16_t{0}));
  for (const char* bad : {"", "8443", "host:", ":80", "h:99999", "h:8x"}) {
    EXPECT_FALSE(ParseListenAddress(bad).ok()) << bad;
  }
}

TEST(ServerTest, StartsOnFreePortsWritesServerJsonAndStops) {
  quell::testing::TempDir temp_dir;
  const std::string& dir = temp_dir.path();
  {
    Server server({.data_dir = dir + "/data",
                   .api_listen = "127.0.0.1:0",
                   .agent_listen = "127.0.0.1:0"});
    ASSERT_TRUE(server.Start().ok());
    EXPECT_NE(server.api_port(), 0);
    EXPECT_NE(server.agent_port(), 0);
    EXPECT_EQ(access((dir + "/data/server.json").c_str(), R_OK), 0);
    EXPECT_EQ(access((dir + "/data/pki/ca.pem").c_str(), R_OK), 0);
    server.Stop();
  }
  // A token can be made beside it, and an unknown role is refused.
  EXPECT_TRUE(CreateApiTokenInDataDir(dir + "/data", "ops", "admin").ok());
  EXPECT_FALSE(CreateApiTokenInDataDir(dir + "/data", "ops", "root").ok());
}

}  // namespace
}  // namespace quell::server
