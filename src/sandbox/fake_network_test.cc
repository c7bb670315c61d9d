// The fake network without namespaces: the resolver's decisions on bytes, the netlink ack
// reader, and FakeNetwork serving sockets bound on 127.0.0.1 (nothing redirected, so the
// recorded destination is the listener itself).
#include "sandbox/fake_network.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/dns_message.h"
#include "common/testing/dns_query.h"

namespace quell::sandbox {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Query(const std::string& name, uint16_t type, uint16_t id = 0x1234, uint16_t flags = 0x0100) {
  return quell::testing::DnsQueryBytes(name, {.id = id, .flags = flags, .qtype = type});
}

// The A record's address of an answer built by BuildDnsAddressAnswer ("" when none).
std::string AnswerAddress(const Bytes& reply) {
  auto header = ParseDnsHeader(reply);
  if (!header.ok() || header->ancount != 1 || reply.size() < 4) return "";
  const uint8_t* a = reply.data() + reply.size() - 4;
  return std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." +
         std::to_string(a[3]);
}

TEST(SinkholeResolverTest, SameNameSameAddressAnyCaseNewNameNewAddress) {
  SinkholeResolver resolver;
  NetworkLog log;
  const Bytes first = resolver.Answer(Query("evil.example", 1), 5, log);
  const Bytes again = resolver.Answer(Query("EVIL.example", 1), 6, log);
  const Bytes other = resolver.Answer(Query("other.example", 1), 7, log);
  EXPECT_EQ(AnswerAddress(first), "198.18.0.1");
  EXPECT_EQ(AnswerAddress(again), "198.18.0.1");
  EXPECT_EQ(AnswerAddress(other), "198.18.0.2");
  auto header = ParseDnsHeader(again);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->id, 0x1234);
  EXPECT_EQ(header->rcode(), 0);
  ASSERT_EQ(log.dns.size(), 3u);
  EXPECT_EQ(log.dns[1].at_ms, 6);
  EXPECT_EQ(log.dns[1].name, "EVIL.example") << "recorded as asked";
  EXPECT_EQ(log.dns[1].type, "A");
  EXPECT_EQ(log.dns[1].answer, "198.18.0.1");
  EXPECT_FALSE(log.truncated);
}

TEST(SinkholeResolverTest, OtherTypesGetNoErrorWithoutRecords) {
  SinkholeResolver resolver;
  NetworkLog log;
  for (uint16_t type : {28, 15, 16, 4242}) {
    const Bytes q = Query("evil.example", type);
    const Bytes reply = resolver.Answer(q, 0, log);
    auto header = ParseDnsHeader(reply);
    ASSERT_TRUE(header.ok());
    EXPECT_EQ(header->rcode(), 0);
    EXPECT_EQ(header->ancount, 0);
    EXPECT_EQ(reply.size(), q.size());
  }
  ASSERT_EQ(log.dns.size(), 4u);
  EXPECT_EQ(log.dns[0].type, "AAAA");
  EXPECT_EQ(log.dns[0].answer, "");
  EXPECT_EQ(log.dns[1].type, "MX");
  EXPECT_EQ(log.dns[3].type, "4242");
}

TEST(SinkholeResolverTest, MalformedQueriesAreIgnoredOrFormErrAndNotRecorded) {
  SinkholeResolver resolver;
  NetworkLog log;
  EXPECT_TRUE(resolver.Answer(Bytes{1, 2, 3}, 0, log).empty()) << "shorter than a header";
  Bytes response = Query("evil.example", 1, 0x1234, 0x8180);
  EXPECT_TRUE(resolver.Answer(response, 0, log).empty()) << "a response is not answered";
  Bytes truncated = Query("evil.example", 1);
  truncated.resize(truncated.size() - 3);
  const Bytes formerr = resolver.Answer(truncated, 0, log);
  auto header = ParseDnsHeader(formerr);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->rcode(), 1);
  EXPECT_EQ(formerr.size(), kDnsHeaderSize);
  const Bytes notimp = resolver.Answer(Query("evil.example", 1, 7, 0x2100), 0, log);  // opcode 4
  header = ParseDnsHeader(notimp);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->rcode(), 4);
  EXPECT_TRUE(log.dns.empty());
}

TEST(SinkholeResolverTest, RecordsAndNamesAreBounded) {
  SinkholeResolver resolver({.max_records = 2, .max_names = 1});
  NetworkLog log;
  EXPECT_EQ(AnswerAddress(resolver.Answer(Query("a.example", 1), 0, log)), "198.18.0.1");
  const Bytes second = resolver.Answer(Query("b.example", 1), 0, log);
  EXPECT_EQ(AnswerAddress(second), "") << "no address left for a new name";
  EXPECT_EQ(ParseDnsHeader(second)->rcode(), 0);
  EXPECT_EQ(AnswerAddress(resolver.Answer(Query("a.example", 1), 0, log)), "198.18.0.1")
      << "still answered once the log is full";
  EXPECT_EQ(log.dns.size(), 2u);
  EXPECT_TRUE(log.truncated);
}

TEST(SinkholeResolverTest, AddressesStayInsideTheBenchmarkingRange) {
  EXPECT_EQ(SinkholeAddress(0), (std::array<uint8_t, 4>{198, 18, 0, 1}));
  EXPECT_EQ(SinkholeAddress(255), (std::array<uint8_t, 4>{198, 18, 1, 0}));
  EXPECT_EQ(SinkholeAddress(131069), (std::array<uint8_t, 4>{198, 19, 255, 254}));
  EXPECT_EQ(SinkholeAddress(4000000), (std::array<uint8_t, 4>{198, 19, 255, 254}));
}

TEST(NetlinkAckTest, ReadsTheAcknowledgementForItsSequence) {
  auto ack = [](uint32_t seq, int error, uint32_t len = NLMSG_LENGTH(sizeof(nlmsgerr))) {
    Bytes b(NLMSG_ALIGN(NLMSG_LENGTH(sizeof(nlmsgerr))), 0);
    nlmsghdr h{.nlmsg_len = len, .nlmsg_type = NLMSG_ERROR, .nlmsg_flags = 0, .nlmsg_seq = seq,
               .nlmsg_pid = 0};
    std::memcpy(b.data(), &h, sizeof(h));
    std::memcpy(b.data() + NLMSG_HDRLEN, &error, sizeof(error));
    return b;
  };
  EXPECT_TRUE(ParseNetlinkAck(ack(7, 0), 7).ok());
  const Status exists = ParseNetlinkAck(ack(7, -EEXIST), 7);
  EXPECT_EQ(exists.code(), StatusCode::kAlreadyExists) << exists.ToString();
  EXPECT_EQ(ParseNetlinkAck(ack(6, 0), 7).code(), StatusCode::kInternal) << "other sequence";
  EXPECT_EQ(ParseNetlinkAck(ack(7, 0, 4000), 7).code(), StatusCode::kInternal) << "length lies";
  EXPECT_EQ(ParseNetlinkAck(ack(7, 0, 8), 7).code(), StatusCode::kInternal) << "length too small";
  EXPECT_EQ(ParseNetlinkAck(ack(7, 0, NLMSG_HDRLEN + 2), 7).code(), StatusCode::kInternal)
      << "error field cut";
  Bytes two = ack(6, -EPERM);
  const Bytes mine = ack(7, 0);
  two.insert(two.end(), mine.begin(), mine.end());
  EXPECT_TRUE(ParseNetlinkAck(two, 7).ok()) << "skips a message for another request";
  EXPECT_EQ(ParseNetlinkAck(Bytes{1, 2, 3}, 7).code(), StatusCode::kInternal);
}

// Sockets as ConfigureSandboxNetwork makes them, but on 127.0.0.1 in this namespace.
SandboxNetworkSockets LoopbackSockets(sockaddr_in* tcp, sockaddr_in* dns) {
  SandboxNetworkSockets s;
  s.tcp_listener.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  s.dns_udp.Reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const int on = 1;
  ::setsockopt(s.dns_udp.get(), IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
  for (auto [fd, addr] : {std::pair{s.tcp_listener.get(), tcp}, std::pair{s.dns_udp.get(), dns}}) {
    *addr = sockaddr_in{};
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(*addr);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(addr), len), 0);
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len), 0);
  }
  EXPECT_EQ(::listen(s.tcp_listener.get(), 16), 0);
  return s;
}

UniqueFd ConnectAndSend(const sockaddr_in& to, const std::string& data) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof(to)), 0)
      << std::strerror(errno);
  if (!data.empty()) {
    EXPECT_EQ(::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(data.size()));
  }
  return fd;
}

TEST(FakeNetworkTest, RecordsConnectionsFirstBytesAndQueries) {
  sockaddr_in tcp{}, dns{};
  SandboxNetworkSockets sockets = LoopbackSockets(&tcp, &dns);
  auto network = FakeNetwork::Start(std::move(sockets), std::chrono::steady_clock::now(),
                                    {.max_connections = 2});
  ASSERT_TRUE(network.ok()) << network.status().ToString();

  // A DNS round trip through the serving thread.
  UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const timeval timeout{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(udp.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const Bytes q = Query("evil.example", 1, 0x4242);
  ASSERT_EQ(::sendto(udp.get(), q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&dns),
                     sizeof(dns)),
            static_cast<ssize_t>(q.size()));
  Bytes reply(512);
  sockaddr_in from{};
  socklen_t from_len = sizeof(from);
  const ssize_t n = ::recvfrom(udp.get(), reply.data(), reply.size(), 0,
                               reinterpret_cast<sockaddr*>(&from), &from_len);
  ASSERT_GT(n, 0) << std::strerror(errno);
  reply.resize(static_cast<size_t>(n));
  EXPECT_EQ(AnswerAddress(reply), "198.18.0.1");
  EXPECT_EQ(ParseDnsHeader(reply)->id, 0x4242);
  EXPECT_EQ(from.sin_port, dns.sin_port);

  // 1000 bytes: 256 kept, all counted. The next two stay open until Stop; the last is over
  // the cap of 2 served connections, waits in the backlog and is still recorded at Stop.
  const std::string big(1000, 'x');
  { UniqueFd c = ConnectAndSend(tcp, "GET / HTTP/1.1\r\n" + big); }
  UniqueFd open = ConnectAndSend(tcp, "hello");
  UniqueFd open2 = ConnectAndSend(tcp, "");
  UniqueFd over = ConnectAndSend(tcp, "third");

  NetworkLog log = (*network)->Stop();
  ASSERT_EQ(log.dns.size(), 1u);
  EXPECT_EQ(log.dns[0].name, "evil.example");
  EXPECT_EQ(log.dns[0].answer, "198.18.0.1");
  ASSERT_EQ(log.tcp.size(), 4u);
  EXPECT_EQ(log.tcp[0].address, "127.0.0.1");
  EXPECT_EQ(log.tcp[0].port, ntohs(tcp.sin_port));
  EXPECT_EQ(log.tcp[0].first_bytes, ("GET / HTTP/1.1\r\n" + big).substr(0, kFirstBytesKept));
  EXPECT_EQ(log.tcp[0].bytes_received, 1016u);
  EXPECT_EQ(log.tcp[1].first_bytes, "hello");
  EXPECT_EQ(log.tcp[2].bytes_received, 0u);
  EXPECT_EQ(log.tcp[3].first_bytes, "third");
  EXPECT_FALSE(log.truncated);

  char byte;
  EXPECT_EQ(::recv(open.get(), &byte, 1, 0), 0) << "closed by Stop";
  EXPECT_TRUE((*network)->Stop().tcp.empty()) << "a second Stop returns nothing";
}

}  // namespace
}  // namespace quell::sandbox
