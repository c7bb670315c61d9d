// Privileged lab: the real NftablesFirewall and IsolationController inside a "victim"
// network namespace, joined by a veth pair to a "server" namespace that listens on the
// server port and on another port. Nothing runs in the namespace of the test machine: the
// controller lives on a thread that entered the victim namespace, and both namespaces are
// deleted when the test ends, passed or failed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/isolation/isolation_controller.h"
#include "agent/isolation/server_link.h"
#include "agent/platform/nftables_firewall.h"
#include "agent/platform/testing/netns_sandbox.h"
#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

using namespace std::chrono_literals;
using test::RunQuiet;
using test::ScopedNetnsSet;

constexpr char kServerV4[] = "10.199.0.1";
constexpr char kServerV6[] = "fd99::1";

// A dual-stack listener on port 0 of the namespace the calling thread is in. The kernel
// completes handshakes into the backlog, so no accept loop is needed for connect checks.
Result<int> Listen(uint16_t& port) {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket");
  int off = 0;
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_any;
  socklen_t length = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    Status failed = ErrnoStatus("listen");
    ::close(fd);
    return failed;
  }
  port = ntohs(addr.sin6_port);
  return fd;
}

class IsolationLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::IsRoot()) GTEST_SKIP() << "needs root (network namespaces, nftables)";
    const std::string id = std::to_string(::getpid());
    server_ns_ = "qiso-srv-" + id;
    victim_ns_ = "qiso-vic-" + id;
    ASSERT_TRUE(namespaces_.Add(server_ns_).ok());
    ASSERT_TRUE(namespaces_.Add(victim_ns_).ok());
    // The veth pair is created inside the server namespace and one end moved to the victim:
    // no interface ever appears in the test machine's namespace.
    for (const std::string& args :
         {"link add eth0 type veth peer name eth0 netns " + victim_ns_,
          std::string("addr add 10.199.0.1/24 dev eth0"), std::string("addr add fd99::1/64 dev eth0 nodad"),
          std::string("link set eth0 up"), std::string("link set lo up")}) {
      Status ok = ScopedNetnsSet::Ip(server_ns_, args);
      ASSERT_TRUE(ok.ok()) << ok.ToString();
    }
    for (const char* args : {"addr add 10.199.0.2/24 dev eth0", "addr add fd99::2/64 dev eth0 nodad",
                             "link set eth0 up", "link set lo up"}) {
      Status ok = ScopedNetnsSet::Ip(victim_ns_, args);
      ASSERT_TRUE(ok.ok()) << ok.ToString();
    }
    Status listening = test::RunInNamedNetns(server_ns_, [this] {
      Result<int> server = Listen(server_port_);
      Result<int> other = Listen(other_port_);
      ASSERT_TRUE(server.ok() && other.ok());
      listeners_ = {*server, *other};
    });
    ASSERT_TRUE(listening.ok()) << listening.ToString();
  }

  void TearDown() override {
    for (int fd : listeners_) ::close(fd);
  }

  // From the calling thread, which must be in the victim namespace.
  static bool TcpWorks(const std::string& address, uint16_t port) {
    return ProbeTcpLink({address}, port, 700ms).ok();
  }
  bool PingWorks(const std::string& address) const {
    return RunQuiet("ip netns exec " + victim_ns_ + " ping -c 1 -W 1 " + address) == 0;
  }
  void DeleteTableByHand() const {
    ASSERT_EQ(RunQuiet("ip netns exec " + victim_ns_ + " nft delete table inet quell_isolation"), 0);
  }

  IsolationOptions Options(const std::string& server_host) const {
    return IsolationOptions{.state_path = state_dir_ / "isolation.json",
                            .server_host = server_host,
                            .server_port = server_port_,
                            .selective_allow = {}};
  }

  ScopedNetnsSet namespaces_;
  std::string server_ns_;
  std::string victim_ns_;
  quell::testing::TempDir state_dir_;
  std::vector<int> listeners_;
  uint16_t server_port_ = 0;
  uint16_t other_port_ = 0;
};

TEST_F(IsolationLabTest, IsolateKeepsOnlyTheServerLinkRepairAndRestoreHoldReleaseUndoes) {
  Status ran = test::RunInNamedNetns(victim_ns_, [this] {
    ASSERT_TRUE(TcpWorks(kServerV4, other_port_)) << "lab is connected before isolation";
    ASSERT_TRUE(PingWorks(kServerV4));

    auto firewall = std::move(NftablesFirewall::Create()).value();
    IsolationController controller(*firewall, Options(kServerV4));
    ASSERT_TRUE(controller.Restore().ok());
    Result<nlohmann::json> isolated = controller.Isolate(IsolationType::kFull);
    ASSERT_TRUE(isolated.ok()) << isolated.status().ToString();
    EXPECT_EQ((*isolated)["pinnedServer"],
              nlohmann::json({std::string(kServerV4) + ":" + std::to_string(server_port_)}));

    EXPECT_TRUE(TcpWorks(kServerV4, server_port_));
    EXPECT_FALSE(TcpWorks(kServerV4, other_port_));
    EXPECT_FALSE(TcpWorks(kServerV6, server_port_)) << "only the pinned address";
    EXPECT_FALSE(PingWorks(kServerV4));

    DeleteTableByHand();
    EXPECT_TRUE(TcpWorks(kServerV4, other_port_)) << "the hand deletion took effect";
    Result<bool> repaired = controller.Repair();
    ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
    EXPECT_TRUE(*repaired);
    EXPECT_FALSE(TcpWorks(kServerV4, other_port_));
    EXPECT_FALSE(*controller.Repair()) << "an intact table is left alone";

    // A "reboot": the kernel forgets the table, a new agent restores it from its state file.
    DeleteTableByHand();
    auto restarted_firewall = std::move(NftablesFirewall::Create()).value();
    IsolationController restarted(*restarted_firewall, Options("server.invalid"));
    ASSERT_TRUE(restarted.Restore().ok());
    EXPECT_EQ(restarted.Current(), IsolationType::kFull);
    EXPECT_FALSE(TcpWorks(kServerV4, other_port_));
    EXPECT_TRUE(TcpWorks(kServerV4, server_port_));

    Result<nlohmann::json> released = restarted.Release();
    ASSERT_TRUE(released.ok()) << released.status().ToString();
    EXPECT_TRUE(TcpWorks(kServerV4, other_port_));
    EXPECT_TRUE(TcpWorks(kServerV4, server_port_));
    EXPECT_TRUE(PingWorks(kServerV4));
  });
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

TEST_F(IsolationLabTest, ServerOverIpv6StaysReachableAfterTheNeighbourCacheIsFlushed) {
  Status ran = test::RunInNamedNetns(victim_ns_, [this] {
    auto firewall = std::move(NftablesFirewall::Create()).value();
    IsolationController controller(*firewall, Options(kServerV6));
    Result<nlohmann::json> isolated = controller.Isolate(IsolationType::kFull);
    ASSERT_TRUE(isolated.ok()) << isolated.status().ToString();

    // Without the neighbour-discovery exception the next connect could not resolve fd99::1.
    ASSERT_EQ(RunQuiet("ip -n " + victim_ns_ + " neigh flush all"), 0);
    ASSERT_EQ(RunQuiet("ip -n " + server_ns_ + " neigh flush all"), 0);
    EXPECT_TRUE(TcpWorks(kServerV6, server_port_));
    EXPECT_FALSE(TcpWorks(kServerV6, other_port_));
    EXPECT_FALSE(TcpWorks(kServerV4, server_port_));
    EXPECT_FALSE(PingWorks(kServerV6));
    ASSERT_TRUE(controller.Release().ok());
    EXPECT_TRUE(PingWorks(kServerV6));
  });
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

TEST_F(IsolationLabTest, IsolationThatWouldCutTheServerIsRolledBack) {
  Status ran = test::RunInNamedNetns(victim_ns_, [this] {
    auto firewall = std::move(NftablesFirewall::Create()).value();
    IsolationOptions options = Options(kServerV4);
    options.server_port = static_cast<uint16_t>(other_port_ + 1);  // nobody listens there
    if (options.server_port == server_port_) ++options.server_port;
    IsolationController controller(*firewall, std::move(options));
    Result<nlohmann::json> isolated = controller.Isolate(IsolationType::kFull);
    ASSERT_FALSE(isolated.ok());
    EXPECT_NE(isolated.status().message().find("cut the server link"), std::string::npos)
        << isolated.status().ToString();
    EXPECT_FALSE(*firewall->TableExists(kIsolationTableFamily, kIsolationTableName));
    EXPECT_TRUE(TcpWorks(kServerV4, other_port_));
  });
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

}  // namespace
}  // namespace quell::agent
