// DNS steering against the real nftables, inside a network namespace this test creates (gone
// when its thread ends): port-53 queries of the namespace reach the filter (UDP, TCP, IPv6),
// the filter's own marked upstream queries are not steered back to it (no loop, also with a
// nameserver on loopback), answers come back from the address the client asked, and removing
// the table restores plain DNS.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/indicators/dns_enforcement.h"
#include "agent/indicators/dns_filter.h"
#include "agent/platform/testing/netns_sandbox.h"
#include "common/unique_fd.h"
#include "common/testing/dns_query.h"

namespace quell::agent {
namespace {

using Bytes = std::vector<uint8_t>;

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

Bytes Query(const std::string& name) { return quell::testing::DnsQueryBytes(name, {.id = 0x5152}); }

int Rcode(const Bytes& a) { return a.size() >= 12 ? a[3] & 0x0f : -1; }

// A nameserver on 127.0.0.2:53 answering every UDP query NOERROR with one A record.
class Upstream {
 public:
  Upstream() {
    fd_.Reset(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (poll(&p, 1, 20) != 1) continue;
        Bytes q(512);
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd_.get(), q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 12) continue;
        q.resize(static_cast<size_t>(n));
        ++queries;
        q[2] |= 0x80;
        q[3] = 0x80;
        q[7] = 1;
        q.insert(q.end(), {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 99});
        sendto(fd_.get(), q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    });
  }
  ~Upstream() {
    stop_ = true;
    thread_.join();
  }
  std::atomic<int> queries{0};

 private:
  UniqueFd fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// One exchange with `address`:53 over a connected socket (so the answer must come from the
// address asked). Empty on timeout or refusal.
Bytes Ask(const char* address, const Bytes& q, bool tcp = false) {
  const bool v6 = std::strchr(address, ':') != nullptr;
  UniqueFd fd(socket(v6 ? AF_INET6 : AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(53);
    inet_pton(AF_INET6, address, &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(53);
    inet_pton(AF_INET, address, &a->sin_addr);
    len = sizeof *a;
  }
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return {};
  Bytes out;
  if (tcp) {
    const uint8_t l[2] = {0, static_cast<uint8_t>(q.size())};
    send(fd.get(), l, 2, MSG_NOSIGNAL);
  }
  send(fd.get(), q.data(), q.size(), MSG_NOSIGNAL);
  pollfd p{fd.get(), POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) return {};
  if (tcp) {
    uint8_t l[2];
    if (recv(fd.get(), l, 2, MSG_WAITALL) != 2) return {};
    Bytes buf(static_cast<size_t>((l[0] << 8) | l[1]));
    if (recv(fd.get(), buf.data(), buf.size(), MSG_WAITALL) != static_cast<ssize_t>(buf.size())) {
      return {};
    }
    return buf;
  }
  Bytes buf(1024);
  ssize_t n = recv(fd.get(), buf.data(), buf.size(), 0);
  if (n <= 0) return {};
  buf.resize(static_cast<size_t>(n));
  return buf;
}

TEST(DnsSteeringNftTest, SteersQueriesToTheFilterWithoutLoopingAndRemovesCleanly) {
  if (!test::IsRoot()) GTEST_SKIP() << "needs root (network namespaces, nftables)";
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("quell-dns-nft-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "resolv.conf") << "nameserver 127.0.0.2\n";
  Status ran = test::RunInNewNetns([&] {
    LoopbackUp();
    auto nft = LibNftRunner::Create();
    ASSERT_TRUE(nft.ok());
    Upstream upstream;
    ASSERT_EQ(Rcode(Ask("127.0.0.2", Query("good.example"))), 0);
    EXPECT_TRUE(Ask("127.0.0.3", Query("good.example")).empty()) << "nothing on .3 yet";

    DnsFilter filter(nullptr, {.resolv_conf = (dir / "resolv.conf").string(),
                               .upstream_timeout = std::chrono::milliseconds(500),
                               .match = [](std::string_view name) -> std::optional<IndicatorMatch> {
                                 if (name == "evil.example" || name.ends_with(".evil.example")) {
                                   return IndicatorMatch{.id = "1",
                                                         .type = IndicatorType::kDomainName,
                                                         .value = "evil.example",
                                                         .action = IndicatorAction::kBlock};
                                 }
                                 return std::nullopt;
                               }});
    DnsSteering steering(**nft);
    {
      // The nameserver is on loopback and its port-53 socket is root's: loopback-only mode.
      DnsEnforcement enforcement(filter, steering, "/proc/thread-self/net");
      Status on = enforcement.Set(true);
      ASSERT_TRUE(on.ok()) << on.ToString();
      ASSERT_TRUE(steering.Installed().has_value());
      EXPECT_TRUE(steering.Installed()->loopback_only);

      EXPECT_EQ(Rcode(Ask("127.0.0.3", Query("www.evil.example"))), 3);
      const int before = upstream.queries;
      Bytes good = Ask("127.0.0.3", Query("good.example"));
      EXPECT_EQ(Rcode(good), 0) << "forwarded with the mark, not steered back";
      EXPECT_EQ(upstream.queries, before + 1);
      EXPECT_EQ(Rcode(Ask("127.0.0.2", Query("evil.example"))), 3)
          << "queries to the real nameserver are steered too";
      EXPECT_EQ(Rcode(Ask("127.0.0.3", Query("evil.example"), /*tcp=*/true)), 3);
      if (filter.v6()) {
        EXPECT_EQ(Rcode(Ask("::1", Query("evil.example"))), 3);
      }

      // Everything steered (the plan for a remote nameserver): the mark alone keeps the
      // filter's forwarding out of the redirect.
      ASSERT_TRUE(steering.Install({.port = filter.port(), .v6 = filter.v6()}).ok());
      EXPECT_EQ(Rcode(Ask("127.0.0.3", Query("good.example"))), 0);
      EXPECT_EQ(Rcode(Ask("127.0.0.3", Query("a.evil.example"))), 3);
      EXPECT_EQ(filter.counters().failed, 0u);
    }  // the agent stops
    EXPECT_FALSE(filter.running());
    auto tables = (*nft)->Run("list tables\n", false);
    ASSERT_TRUE(tables.ok());
    EXPECT_EQ(tables->find("quell_dns"), std::string::npos);
    EXPECT_TRUE(Ask("127.0.0.3", Query("evil.example")).empty()) << "plain DNS again";
    EXPECT_EQ(Rcode(Ask("127.0.0.2", Query("evil.example"))), 0);

    // The table lives only as long as the netlink socket that made it: an agent killed
    // before it could remove anything leaves plain DNS, not a redirect to nothing.
    auto owner = LibNftRunner::Create();
    ASSERT_TRUE(owner.ok());
    DnsSteering orphan(**owner);
    ASSERT_TRUE(orphan.Install({.port = 9, .v6 = false}).ok());
    EXPECT_NE((*nft)->Run("list tables\n", false)->find("quell_dns"), std::string::npos);
    EXPECT_FALSE(steering.Remove().ok()) << "another process's table cannot be touched";
    owner->reset();  // the "agent" dies: its socket closes
    EXPECT_EQ((*nft)->Run("list tables\n", false)->find("quell_dns"), std::string::npos);
    EXPECT_EQ(Rcode(Ask("127.0.0.2", Query("evil.example"))), 0);
  });
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(ran.ok()) << ran.ToString();
}

}  // namespace
}  // namespace quell::agent
