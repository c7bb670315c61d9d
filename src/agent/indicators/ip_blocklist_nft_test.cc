// The IP blocklist against the real nftables, inside a network namespace this test creates
// (a fresh one per test, gone when its thread ends): traffic to a blocked address is dropped
// both ways, counters become detections, incremental updates (incl. a wider range replacing
// the ranges it covers) are accepted by the kernel, and removing everything restores traffic.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "agent/indicators/ip_blocklist.h"
#include "agent/platform/testing/netns_sandbox.h"

namespace quell::agent {
namespace {

class RecordingSink final : public DetectionSink {
 public:
  void Report(Detection d) override { got.push_back(std::move(d)); }
  std::vector<Detection> got;
};

void LoopbackUp() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ASSERT_EQ(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
  ifr.ifr_flags |= IFF_UP;
  ASSERT_EQ(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
  close(s);
}

// A listener on all addresses of the namespace; returns its port.
int Listen(int* fd_out) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = 0;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *fd_out = fd;
  return ntohs(a.sin_port);
}

// True when a TCP connection to ip:port completes within 300 ms.
bool Connects(const char* ip, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip, &a.sin_addr);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  bool ok = rc == 0;
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
    if (poll(&p, 1, 300) == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      ok = err == 0;
    }
  }
  close(fd);
  return ok;
}

TEST(IpBlocklistNftTest, BlocksBothWaysCountsHitsAndUpdatesIncrementally) {
  if (!test::IsRoot()) GTEST_SKIP() << "needs root (network namespaces, nftables)";
  Status ran = test::RunInNewNetns([] {
    LoopbackUp();
    auto nft = LibNftRunner::Create();
    ASSERT_TRUE(nft.ok());
    RecordingSink sink;
    FakeClock clock;
    IpBlocklist list(**nft, &sink,
                     {.clock = &clock, .indicator_for = [](const std::string& cidr) {
                        IndicatorMatch m;
                        m.id = "7";
                        m.type = IndicatorType::kIpAddress;
                        m.value = cidr;
                        m.action = IndicatorAction::kBlock;
                        m.generate_alert = true;
                        return std::optional<IndicatorMatch>(m);
                      }});
    int lfd = -1;
    const int port = Listen(&lfd);
    ASSERT_TRUE(Connects("127.0.0.2", port));

    ASSERT_TRUE(list.Sync({*ParseIpRange("127.0.0.2"), *ParseIpRange("2001:db8::/32")}).ok());
    EXPECT_FALSE(Connects("127.0.0.2", port));  // dropped
    EXPECT_TRUE(Connects("127.0.0.3", port));   // a neighbour is not
    auto hits = list.PollHits();
    ASSERT_TRUE(hits.ok()) << hits.status().ToString();
    EXPECT_EQ(*hits, 1u);
    ASSERT_EQ(sink.got.size(), 1u);
    EXPECT_EQ(sink.got[0].evidence[0]["ipAddress"], "127.0.0.2");

    // Incoming too: a packet FROM a blocked address (127.0.0.3 as the source) is dropped on
    // input, so the connection from it cannot complete either.
    ASSERT_TRUE(list.Sync({*ParseIpRange("127.0.0.3"), *ParseIpRange("2001:db8::/32")}).ok());
    EXPECT_TRUE(Connects("127.0.0.2", port));
    EXPECT_FALSE(Connects("127.0.0.3", port));

    // A wider range replacing the one it contains, in one transaction.
    ASSERT_TRUE(list.Sync({*ParseIpRange("127.0.0.3"), *ParseIpRange("127.0.0.0/24")}).ok());
    EXPECT_EQ(list.Installed().size(), 1u);
    EXPECT_FALSE(Connects("127.0.0.9", port));

    ASSERT_TRUE(list.Sync({}).ok());
    EXPECT_TRUE(Connects("127.0.0.2", port));
    EXPECT_TRUE(Connects("127.0.0.3", port));
    auto table = (*nft)->Run("list tables\n", false);
    ASSERT_TRUE(table.ok());
    EXPECT_EQ(table->find("quell_indicators"), std::string::npos);
    close(lfd);
  });
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

TEST(IpBlocklistNftTest, RestartReplacesAStaleTable) {
  if (!test::IsRoot()) GTEST_SKIP() << "needs root (network namespaces, nftables)";
  Status ran = test::RunInNewNetns([] {
    LoopbackUp();
    auto nft = LibNftRunner::Create();
    ASSERT_TRUE(nft.ok());
    int lfd = -1;
    const int port = Listen(&lfd);
    {
      IpBlocklist before(**nft, nullptr, {});
      ASSERT_TRUE(before.Sync({*ParseIpRange("127.0.0.2")}).ok());
    }  // the agent dies; the table stays (blocking survives a crash)
    EXPECT_FALSE(Connects("127.0.0.2", port));
    IpBlocklist after(**nft, nullptr, {});
    ASSERT_TRUE(after.Sync({*ParseIpRange("127.0.0.5")}).ok());  // restored from the store
    EXPECT_TRUE(Connects("127.0.0.2", port));
    EXPECT_FALSE(Connects("127.0.0.5", port));
    ASSERT_TRUE(after.Clear().ok());
    close(lfd);
  });
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

}  // namespace
}  // namespace quell::agent
