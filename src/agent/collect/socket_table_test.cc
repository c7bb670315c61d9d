#include "agent/collect/socket_table.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/testing/temp_dir.h"
#include "common/unique_fd.h"

namespace quell::agent::collect {
namespace {

namespace fs = std::filesystem;

void Write(const std::string& path, std::string_view text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

constexpr std::string_view kTcp =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0A00000A:D431 0200000A:0016 01 00000000:00000000 02:000A7D2F 00000000  1000        0 2222 2 0000000000000000 20 4 30 10 -1\n"
    "   2: 0A00000A:D432 0200000A:01BB 06 00000000:00000000 03:00000A2F 00000000     0        0 0 3 0000000000000000\n"
    "   3: garbage\n";
constexpr std::string_view kUdp6 =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
    "  10: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 3333 2 0000000000000000 0\n";

TEST(DecodeProcNetAddressTest, Ipv4AndIpv6) {
  EXPECT_EQ(DecodeProcNetAddress("0100007F"), "127.0.0.1");
  EXPECT_EQ(DecodeProcNetAddress("0A00000A"), "10.0.0.10");
  EXPECT_EQ(DecodeProcNetAddress("00000000000000000000000001000000"), "::1");
  EXPECT_EQ(DecodeProcNetAddress("0000000000000000FFFF00000100007F"), "::ffff:127.0.0.1");
  EXPECT_EQ(DecodeProcNetAddress("B80D0120000000000000000052965732"), "2001:db8::3257:9652");
  EXPECT_FALSE(DecodeProcNetAddress("0100007").has_value());
  EXPECT_FALSE(DecodeProcNetAddress("0100007G").has_value());
}

TEST(SocketStateNameTest, TcpAndUdp) {
  EXPECT_EQ(SocketStateName(true, 0x0A), "LISTEN");
  EXPECT_EQ(SocketStateName(true, 0x01), "ESTABLISHED");
  EXPECT_EQ(SocketStateName(true, 0x07), "CLOSE");
  EXPECT_EQ(SocketStateName(false, 0x07), "UNCONN");
  EXPECT_EQ(SocketStateName(false, 0x01), "ESTABLISHED");
  EXPECT_EQ(SocketStateName(true, 0x42), "UNKNOWN(66)");
}

TEST(ParseProcNetTest, TcpTable) {
  auto s = ParseProcNet("tcp", kTcp);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].local_address, "127.0.0.1");
  EXPECT_EQ(s[0].local_port, 631);
  EXPECT_EQ(s[0].state, "LISTEN");
  EXPECT_EQ(s[0].inode, 1111u);
  EXPECT_TRUE(IsListening(s[0]));
  EXPECT_EQ(s[1].remote_address, "10.0.0.2");
  EXPECT_EQ(s[1].remote_port, 22);
  EXPECT_EQ(s[1].local_port, 54321);
  EXPECT_EQ(s[1].state, "ESTABLISHED");
  EXPECT_EQ(s[1].uid, 1000u);
  EXPECT_FALSE(IsListening(s[1]));
  EXPECT_EQ(s[2].state, "TIME_WAIT");
  EXPECT_EQ(s[2].inode, 0u);
}

TEST(ParseSocketLinkTest, OnlySockets) {
  EXPECT_EQ(ParseSocketLink("socket:[12345]"), 12345u);
  EXPECT_FALSE(ParseSocketLink("pipe:[12345]").has_value());
  EXPECT_FALSE(ParseSocketLink("socket:[]").has_value());
  EXPECT_FALSE(ParseSocketLink("/dev/null").has_value());
}

class FakeNetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proc_ = dir_ / "proc";
    Write(proc_ + "/net/tcp", kTcp);
    Write(proc_ + "/net/udp6", kUdp6);
    AddProcess(500, "nginx", {{"3", "socket:[1111]"}, {"4", "/var/log/x"}});
    AddProcess(501, "nginx", {{"3", "socket:[1111]"}, {"7", "socket:[1111]"}});
    AddProcess(900, "ssh", {{"5", "socket:[2222]"}});
    AddProcess(77, "dnsmasq", {{"9", "socket:[3333]"}});
  }
  void AddProcess(int pid, const std::string& comm,
                  const std::vector<std::pair<std::string, std::string>>& fds) {
    const std::string base = proc_ + "/" + std::to_string(pid);
    Write(base + "/comm", comm + "\n");
    fs::create_directories(base + "/fd");
    for (const auto& [fd, target] : fds) fs::create_symlink(target, base + "/fd/" + fd);
  }
  testing::TempDir dir_;
  std::string proc_;
};

TEST_F(FakeNetTest, ListSocketsWithOwners) {
  auto list = ListSockets(proc_);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].owners, (std::vector<SocketOwner>{{500, "nginx"}, {501, "nginx"}}));
  EXPECT_EQ((*list)[1].owners, (std::vector<SocketOwner>{{900, "ssh"}}));
  EXPECT_TRUE((*list)[2].owners.empty());  // TIME_WAIT: nobody holds it
  EXPECT_EQ((*list)[3].proto, "udp6");
  EXPECT_EQ((*list)[3].local_address, "::1");
  EXPECT_EQ((*list)[3].local_port, 53);
  EXPECT_TRUE(IsListening((*list)[3]));
  EXPECT_EQ((*list)[3].owners, (std::vector<SocketOwner>{{77, "dnsmasq"}}));

  nlohmann::json j = SocketsToJson(*list);
  EXPECT_EQ(j[1]["remote_address"], "10.0.0.2");
  EXPECT_EQ(j[1]["owners"][0]["name"], "ssh");
  EXPECT_EQ(j[3]["listening"], true);
  EXPECT_EQ(j[2]["owners_known"], true);

  EXPECT_EQ(SocketsTableText(*list),
            "PROTO  LOCAL            REMOTE        STATE        UID   PID/NAME\n"
            "tcp    127.0.0.1:631    0.0.0.0:*     LISTEN       0     500/nginx,501/nginx\n"
            "tcp    10.0.0.10:54321  10.0.0.2:22   ESTABLISHED  1000  900/ssh\n"
            "tcp    10.0.0.10:54322  10.0.0.2:443  TIME_WAIT    0     -\n"
            "udp6   [::1]:53         [::]:*        UNCONN       101   77/dnsmasq\n");
}

TEST_F(FakeNetTest, UnreadableFdsMakeOwnersUnknownNotAbsent) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any fd directory";
  fs::permissions(proc_ + "/77/fd", fs::perms::none);
  auto list = ListSockets(proc_);
  fs::permissions(proc_ + "/77/fd", fs::perms::owner_all);
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE((*list)[3].owners.empty());
  EXPECT_FALSE((*list)[3].owners_known);
  EXPECT_TRUE((*list)[0].owners_known);  // found owners are known whatever else was hidden
  EXPECT_NE(SocketsTableText(*list).find("UNCONN       101   ?\n"), std::string::npos);
}

TEST_F(FakeNetTest, NoTablesIsAnError) {
  EXPECT_FALSE(ListSockets(dir_ / "nothing").ok());
}

TEST(ListSocketsRealProcTest, FindsOwnListenerAndBoundUdp) {
  UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(tcp && udp);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(tcp.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(tcp.get(), 1), 0);
  ASSERT_EQ(::bind(udp.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto port_of = [](int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  };
  const uint16_t tcp_port = port_of(tcp.get()), udp_port = port_of(udp.get());

  auto list = ListSockets("/proc");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  auto find = [&](std::string_view proto, uint16_t port) {
    return std::find_if(list->begin(), list->end(), [&](const SocketRecord& s) {
      return s.proto == proto && s.local_port == port && s.local_address == "127.0.0.1";
    });
  };
  auto t = find("tcp", tcp_port);
  ASSERT_NE(t, list->end());
  EXPECT_EQ(t->state, "LISTEN");
  ASSERT_EQ(t->owners.size(), 1u);
  EXPECT_EQ(t->owners[0].pid, ::getpid());
  auto u = find("udp", udp_port);
  ASSERT_NE(u, list->end());
  EXPECT_TRUE(IsListening(*u));
  ASSERT_EQ(u->owners.size(), 1u);
  EXPECT_EQ(u->owners[0].pid, ::getpid());
}

}  // namespace
}  // namespace quell::agent::collect
