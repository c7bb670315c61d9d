// The DNS filter end to end on loopback, without privileges: a fake upstream nameserver on
// 127.0.0.1 (UDP and TCP, port 0), a resolv.conf in a temp dir naming it, real indicator
// matching through an IndicatorSet, and queries both through Answer() and over real sockets.
#include "agent/indicators/dns_filter.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/indicators/dns_enforcement.h"
#include "common/unique_fd.h"
#include "common/testing/dns_query.h"

namespace quell::agent {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Query(const std::string& name, uint16_t id = 0x1234, uint16_t qtype = 1) {
  return quell::testing::DnsQueryBytes(name, {.id = id, .qtype = qtype});
}

int Rcode(const Bytes& answer) { return answer.size() >= 4 ? answer[3] & 0x0f : -1; }

// The A address in an answer made by FakeUpstream ("" when none).
std::string Address(const Bytes& answer) {
  if (answer.size() < 16 || answer[7] == 0) return "";
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, answer.data() + answer.size() - 4, text, sizeof text);
  return text;
}

// Answers A queries: over UDP with 192.0.2.7 (or TC for names starting "big."), over TCP with
// 192.0.2.8. Counts what it receives.
class FakeUpstream {
 public:
  FakeUpstream() {
    udp_.Reset(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(udp_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(udp_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    tcp_.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    setsockopt(tcp_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(bind(tcp_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(tcp_.get(), 8), 0);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeUpstream() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::atomic<int> udp_queries{0}, tcp_queries{0};
  std::atomic<bool> silent{false};

 private:
  static Bytes Reply(Bytes q, const uint8_t addr[4], bool tc) {
    q[2] = static_cast<uint8_t>(q[2] | 0x80 | (tc ? 0x02 : 0));
    q[3] = 0x80;
    if (tc) return q;
    q[7] = 1;
    q.insert(q.end(), {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, addr[0], addr[1], addr[2], addr[3]});
    return q;
  }

  void Loop() {
    static const uint8_t kUdpAddr[4] = {192, 0, 2, 7}, kTcpAddr[4] = {192, 0, 2, 8};
    while (!stop_) {
      pollfd fds[2] = {{udp_.get(), POLLIN, 0}, {tcp_.get(), POLLIN, 0}};
      if (poll(fds, 2, 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        Bytes buf(4096);
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(udp_.get(), buf.data(), buf.size(), 0,
                             reinterpret_cast<sockaddr*>(&from), &len);
        if (n <= 0) continue;
        buf.resize(static_cast<size_t>(n));
        ++udp_queries;
        if (silent) continue;
        const bool big = buf.size() > 16 && buf[12] == 3 && buf[13] == 'b' && buf[14] == 'i';
        Bytes r = Reply(buf, kUdpAddr, big);
        sendto(udp_.get(), r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
      if (fds[1].revents & POLLIN) {
        UniqueFd c(accept4(tcp_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        uint8_t len[2];
        if (recv(c.get(), len, 2, MSG_WAITALL) != 2) continue;
        Bytes q(static_cast<size_t>((len[0] << 8) | len[1]));
        if (recv(c.get(), q.data(), q.size(), MSG_WAITALL) != static_cast<ssize_t>(q.size())) continue;
        ++tcp_queries;
        Bytes r = Reply(q, kTcpAddr, false);
        uint8_t out[2] = {static_cast<uint8_t>(r.size() >> 8), static_cast<uint8_t>(r.size())};
        send(c.get(), out, 2, MSG_NOSIGNAL);
        send(c.get(), r.data(), r.size(), MSG_NOSIGNAL);
      }
    }
  }

  UniqueFd udp_, tcp_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class RecordingSink final : public DetectionSink {
 public:
  void Report(Detection d) override {
    std::lock_guard l(mu);
    got.push_back(std::move(d));
  }
  size_t size() {
    std::lock_guard l(mu);
    return got.size();
  }
  std::mutex mu;
  std::vector<Detection> got;
};

quell::v1::Indicator Ind(std::string id, std::string type, std::string value, std::string action) {
  quell::v1::Indicator i;
  i.set_id(std::move(id));
  i.set_type(std::move(type));
  i.set_value(std::move(value));
  i.set_action(std::move(action));
  i.set_severity("High");
  i.set_title("bad site");
  i.set_generate_alert(true);
  return i;
}

class DnsFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("quell-dns-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    WriteResolvConf("# a comment\nsearch lab\nnameserver 127.0.0.1\noptions ndots:1\n");
    ASSERT_TRUE(set_.Upsert(Ind("b1", "DomainName", "evil.example", "Block")).ok());
    ASSERT_TRUE(set_.Upsert(Ind("u1", "Url", "https://tracker.example/path/x", "Block")).ok());
    ASSERT_TRUE(set_.Upsert(Ind("a1", "DomainName", "watched.example", "Audit")).ok());
    ASSERT_TRUE(set_.Upsert(Ind("ok", "DomainName", "fine.evil.example", "Allowed")).ok());
    filter_ = std::make_unique<DnsFilter>(
        &sink_, DnsFilterOptions{
                    .resolv_conf = (dir_ / "resolv.conf").string(),
                    .upstream_port = upstream_.port(),
                    .upstream_timeout = std::chrono::milliseconds(300),
                    .mark = 0,
                    .workers = 2,
                    .report_suppression = std::chrono::milliseconds(60'000),
                    .clock = &clock_,
                    .match = [this](std::string_view name) {
                      std::lock_guard l(set_mutex_);
                      return set_.MatchDomain(name);
                    }});
  }
  void TearDown() override {
    filter_.reset();
    std::filesystem::remove_all(dir_);
  }
  void WriteResolvConf(const std::string& text) {
    // A new file renamed over the old: a new inode, as resolvconf and NetworkManager do.
    std::ofstream(dir_ / "resolv.conf.new") << text;
    std::filesystem::rename(dir_ / "resolv.conf.new", dir_ / "resolv.conf");
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::mutex set_mutex_;
  IndicatorSet set_{clock_};
  FakeUpstream upstream_;
  RecordingSink sink_;
  std::unique_ptr<DnsFilter> filter_;
};

TEST_F(DnsFilterTest, BlockedNamesAndSubdomainsGetNxDomainWithoutLeavingTheHost) {
  for (const char* name : {"evil.example", "EVIL.Example", "a.b.evil.example", "tracker.example",
                           "cdn.tracker.example", "x y.evil.example", "*.evil.example"}) {
    Bytes q = Query(name, 0x4242);
    Bytes a = filter_->Answer(q, true);
    EXPECT_EQ(Rcode(a), 3) << name;
    ASSERT_GE(a.size(), 12u);
    EXPECT_EQ(a[0], 0x42);
    EXPECT_EQ(a[1], 0x42);
    EXPECT_EQ(Bytes(a.begin() + 12, a.end()), Bytes(q.begin() + 12, q.end())) << name;
  }
  EXPECT_EQ(upstream_.udp_queries, 0) << "blocked names are never forwarded";
  EXPECT_EQ(filter_->counters().blocked, 7u);
}

TEST_F(DnsFilterTest, OtherNamesAreForwardedUnchanged) {
  for (const char* name : {"good.example", "notevil.example", "evil.example.org",
                           "fine.evil.example"}) {
    Bytes a = filter_->Answer(Query(name), true);
    EXPECT_EQ(Rcode(a), 0) << name;
    EXPECT_EQ(Address(a), "192.0.2.7") << name;
  }
  EXPECT_EQ(upstream_.udp_queries, 4);
  EXPECT_EQ(sink_.size(), 0u) << "Allowed and unmatched names are not reported";
}

TEST_F(DnsFilterTest, HitsBecomeDetectionsRateLimitedPerIndicatorAndName) {
  filter_->Answer(Query("evil.example"), true);
  filter_->Answer(Query("evil.example"), true);
  filter_->Answer(Query("www.evil.example"), true);
  ASSERT_EQ(sink_.size(), 2u) << "one per (indicator, name) within the window";
  const Detection& d = sink_.got[0];
  EXPECT_EQ(d.detector_id, "quell.indicators.dns");
  EXPECT_EQ(d.severity, "High");
  EXPECT_EQ(d.threat_name, "bad site");
  EXPECT_EQ(d.evidence[0]["url"], "evil.example");
  EXPECT_NE(d.title.find("blocked"), std::string::npos);
  clock_.Advance(61'000);
  filter_->Answer(Query("evil.example"), true);
  EXPECT_EQ(sink_.size(), 3u);

  // Audit: answered from upstream, and reported.
  Bytes a = filter_->Answer(Query("api.watched.example"), true);
  EXPECT_EQ(Address(a), "192.0.2.7");
  ASSERT_EQ(sink_.size(), 4u);
  EXPECT_EQ(sink_.got[3].evidence[0]["detectionStatus"], "detected");
  EXPECT_EQ(filter_->counters().audited, 1u);
}

TEST_F(DnsFilterTest, TruncatedUdpAnswerFallsBackToTcp) {
  Bytes a = filter_->Answer(Query("big.example"), true);
  EXPECT_EQ(Address(a), "192.0.2.8") << "the TCP answer fits a UDP client";
  EXPECT_EQ(upstream_.tcp_queries, 1);
  a = filter_->Answer(Query("big.example"), false);
  EXPECT_EQ(Address(a), "192.0.2.8");
}

TEST_F(DnsFilterTest, FollowsResolvConfChangesAndFailsWithServFail) {
  EXPECT_EQ(filter_->Nameservers(), (std::vector<std::string>{"127.0.0.1"}));
  // A dead nameserver first: the next one answers.
  WriteResolvConf("nameserver 127.0.0.9\nnameserver 127.0.0.1\n");
  upstream_.silent = false;
  EXPECT_EQ(filter_->Nameservers(), (std::vector<std::string>{"127.0.0.9", "127.0.0.1"}));
  EXPECT_EQ(Address(filter_->Answer(Query("good.example"), true)), "192.0.2.7");

  upstream_.silent = true;
  WriteResolvConf("nameserver 127.0.0.1\n");
  Bytes a = filter_->Answer(Query("good.example", 0x0707), true);
  EXPECT_EQ(Rcode(a), 2) << "SERVFAIL when no nameserver answers in time";
  EXPECT_EQ(a[0], 0x07);
  EXPECT_EQ(filter_->counters().failed, 1u);
}

TEST_F(DnsFilterTest, MalformedQueriesAreNotForwarded) {
  Bytes loop = {0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
  Bytes a = filter_->Answer(loop, true);
  EXPECT_EQ(Rcode(a), 1);
  EXPECT_EQ(a[0], 0xab);
  EXPECT_TRUE(filter_->Answer(Bytes{1, 2, 3}, true).empty()) << "no header: dropped";
  Bytes response = Query("evil.example");
  response[2] |= 0x80;
  EXPECT_TRUE(filter_->Answer(response, true).empty()) << "a response is not answered";
  Bytes two = Query("good.example");
  two[5] = 2;  // QDCOUNT 2: the second question could hide a blocked name
  EXPECT_EQ(Rcode(filter_->Answer(two, true)), 1);
  EXPECT_EQ(upstream_.udp_queries, 0);
}

// Real sockets: UDP and TCP on 127.0.0.1 (and ::1 when the host has it).
TEST_F(DnsFilterTest, ServesUdpAndTcpOnLoopback) {
  ASSERT_TRUE(filter_->Start().ok());
  ASSERT_TRUE(filter_->Start().ok()) << "idempotent";
  const uint16_t port = filter_->port();
  ASSERT_NE(port, 0);

  auto udp_exchange = [&](int family, const Bytes& q) {
    UniqueFd fd(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      a->sin6_addr = in6addr_loopback;
      len = sizeof *a;
    }
    sendto(fd.get(), q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&ss), len);
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, 3000) != 1) return Bytes{};
    Bytes buf(4096);
    ssize_t n = recv(fd.get(), buf.data(), buf.size(), 0);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return buf;
  };
  EXPECT_EQ(Rcode(udp_exchange(AF_INET, Query("evil.example"))), 3);
  EXPECT_EQ(Address(udp_exchange(AF_INET, Query("good.example"))), "192.0.2.7");
  if (filter_->v6()) {
    EXPECT_EQ(Rcode(udp_exchange(AF_INET6, Query("www.evil.example"))), 3);
  }

  // TCP: two queries on one connection.
  UniqueFd tcp(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(tcp.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  for (const char* name : {"evil.example", "good.example"}) {
    Bytes q = Query(name);
    uint8_t len[2] = {0, static_cast<uint8_t>(q.size())};
    ASSERT_EQ(send(tcp.get(), len, 2, MSG_NOSIGNAL), 2);
    ASSERT_EQ(send(tcp.get(), q.data(), q.size(), MSG_NOSIGNAL), static_cast<ssize_t>(q.size()));
    ASSERT_EQ(recv(tcp.get(), len, 2, MSG_WAITALL), 2);
    Bytes r((len[0] << 8) | len[1]);
    ASSERT_EQ(recv(tcp.get(), r.data(), r.size(), MSG_WAITALL), static_cast<ssize_t>(r.size()));
    EXPECT_EQ(Rcode(r), std::string(name) == "evil.example" ? 3 : 0) << name;
  }
  filter_->Stop();
  EXPECT_FALSE(filter_->running());
  EXPECT_EQ(filter_->port(), 0);
  EXPECT_TRUE(udp_exchange(AF_INET, Query("evil.example")).empty()) << "closed after Stop";
}

TEST_F(DnsFilterTest, EnforcementStartsFilterBeforeSteeringAndRemovesBoth) {
  FakeNftRunner nft;
  DnsSteering steering(nft);
  {
    DnsEnforcement enforcement(*filter_, steering, (dir_ / "no-proc").string());
    ASSERT_TRUE(enforcement.Set(false).ok());
    ASSERT_EQ(nft.Scripts().size(), 1u) << "the first Set(false) removes a stale table";
    EXPECT_NE(nft.Scripts()[0].find("delete table inet quell_dns"), std::string::npos);
    ASSERT_TRUE(enforcement.Set(false).ok());
    EXPECT_EQ(nft.Scripts().size(), 1u) << "already off: no nft call";

    ASSERT_TRUE(enforcement.Set(true).ok());
    ASSERT_TRUE(filter_->running());
    ASSERT_EQ(nft.Scripts().size(), 2u);
    EXPECT_NE(nft.Scripts()[1].find("redirect to :" + std::to_string(filter_->port())),
              std::string::npos);
    ASSERT_TRUE(enforcement.Set(true).ok());
    EXPECT_EQ(nft.Scripts().size(), 2u) << "unchanged: no nft call";

    ASSERT_TRUE(enforcement.Set(false).ok());
    EXPECT_FALSE(filter_->running());
    ASSERT_TRUE(enforcement.Set(true).ok());
    // A failing nft: the error is returned (the enforcer retries on its tick).
    nft.QueueReply(Internal("nft: no"));
    EXPECT_FALSE(enforcement.Set(false).ok());
  }  // the agent stops: the table goes
  EXPECT_EQ(nft.Scripts().back(),
            "add table inet quell_dns { flags owner; }\ndelete table inet quell_dns\n");
  EXPECT_FALSE(filter_->running());
}

TEST(ResolvConfTest, ParsesNameserverLines) {
  EXPECT_EQ(ParseResolvConf("nameserver 10.0.0.2\n# nameserver 1.1.1.1\nnameserver\tfe80::1%1\n"
                            "nameserver bogus\nnameservers 9.9.9.9\n  nameserver 8.8.8.8 ; x\n"
                            "nameserver 127.0.0.53 # stub"),
            (std::vector<std::string>{"10.0.0.2", "fe80::1%1", "127.0.0.53"}));
}

}  // namespace
}  // namespace quell::agent
