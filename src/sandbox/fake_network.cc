#include "sandbox/fake_network.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/dns_message.h"
#include "common/logging.h"

namespace quell::sandbox {
namespace {

// getsockopt names of netfilter's original-destination lookup on an accepted, redirected
// socket: SO_ORIGINAL_DST (SOL_IP, <linux/netfilter_ipv4.h>) and IP6T_SO_ORIGINAL_DST
// (SOL_IPV6, <linux/netfilter_ipv6/ip6_tables.h>); both are 80. Spelled here because those
// headers clash with glibc's <netinet/in.h>.
constexpr int kSoOriginalDst = 80;
constexpr int kIp6tSoOriginalDst = 80;

constexpr uint32_t kSinkholeBase = (198u << 24) | (18u << 16);  // 198.18.0.0/15
constexpr uint32_t kSinkholeCount = (1u << 17) - 2;              // without .0.0 and .255.255
constexpr size_t kReadChunk = 16384;

std::string AddressText(const sockaddr_storage& a) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, text, sizeof(text));
  } else if (a.ss_family == AF_INET6) {
    const in6_addr& v6 = reinterpret_cast<const sockaddr_in6&>(a).sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      inet_ntop(AF_INET, &v6.s6_addr[12], text, sizeof(text));
    } else {
      inet_ntop(AF_INET6, &v6, text, sizeof(text));
    }
  }
  return text;
}

uint16_t PortOf(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return 0;
}

// Where the client meant to connect: conntrack's original destination (the connection was
// redirected), else the local address (it came straight to the listener's port).
void OriginalDestination(int fd, std::string* address, uint16_t* port) {
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) return;
  const bool v4 = local.ss_family == AF_INET ||
                  (local.ss_family == AF_INET6 &&
                   IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<sockaddr_in6&>(local).sin6_addr));
  sockaddr_storage original{};
  if (v4) {
    socklen_t olen = sizeof(sockaddr_in);
    if (::getsockopt(fd, SOL_IP, kSoOriginalDst, &original, &olen) == 0) {
      original.ss_family = AF_INET;
      local = original;
    }
  } else {
    socklen_t olen = sizeof(sockaddr_in6);
    if (::getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &original, &olen) == 0) {
      original.ss_family = AF_INET6;
      local = original;
    }
  }
  *address = AddressText(local);
  *port = PortOf(local);
}

std::string Lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string DottedQuad(const std::array<uint8_t, 4>& a) {
  return std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." +
         std::to_string(a[3]);
}

}  // namespace

std::array<uint8_t, 4> SinkholeAddress(uint32_t index) {
  const uint32_t a = kSinkholeBase + 1 + std::min(index, kSinkholeCount - 1);
  return {static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16),
          static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)};
}

std::string DnsTypeName(uint16_t type) {
  switch (type) {
    case 1: return "A";
    case 2: return "NS";
    case 5: return "CNAME";
    case 6: return "SOA";
    case 12: return "PTR";
    case 15: return "MX";
    case 16: return "TXT";
    case 28: return "AAAA";
    case 33: return "SRV";
    case 64: return "SVCB";
    case 65: return "HTTPS";
    case 255: return "ANY";
    default: return std::to_string(type);
  }
}

std::vector<uint8_t> SinkholeResolver::Answer(std::span<const uint8_t> datagram, int64_t at_ms,
                                              NetworkLog& log) {
  auto header = ParseDnsHeader(datagram);
  if (!header.ok() || header->qr()) return {};
  auto query = ParseDnsQuery(datagram);
  if (!query.ok()) return BuildDnsHeaderOnlyAnswer(*header, DnsRcode::kFormErr);
  if (header->opcode() != 0) return BuildDnsAnswer(*query, DnsRcode::kNotImp);

  std::string answer;
  std::vector<uint8_t> reply;
  if (query->qtype == 1 && query->qclass == 1) {
    const std::string key = Lowercase(query->name.Text());
    auto it = index_by_name_.find(key);
    const size_t cap = std::min<size_t>(limits_.max_names, kSinkholeCount);
    if (it == index_by_name_.end() && index_by_name_.size() < cap) {
      it = index_by_name_.emplace(key, static_cast<uint32_t>(index_by_name_.size())).first;
    }
    if (it != index_by_name_.end()) {
      const std::array<uint8_t, 4> address = SinkholeAddress(it->second);
      answer = DottedQuad(address);
      reply = BuildDnsAddressAnswer(*query, address, limits_.ttl_seconds);
    } else {
      log.truncated = true;
    }
  }
  if (reply.empty()) reply = BuildDnsAnswer(*query, DnsRcode::kNoError);
  if (log.dns.size() < limits_.max_records) {
    log.dns.push_back(DnsRecord{.at_ms = at_ms,
                                .name = query->name.Text(),
                                .type = DnsTypeName(query->qtype),
                                .answer = std::move(answer)});
  } else {
    log.truncated = true;
  }
  return reply;
}

Result<std::unique_ptr<FakeNetwork>> FakeNetwork::Start(
    SandboxNetworkSockets sockets, std::chrono::steady_clock::time_point origin,
    FakeNetworkLimits limits) {
  if (!sockets.tcp_listener || !sockets.dns_udp) return InvalidArgument("fake network: no sockets");
  for (int fd : {sockets.tcp_listener.get(), sockets.dns_udp.get()}) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
      return ErrnoStatus("fake network: O_NONBLOCK");
    }
  }
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return ErrnoStatus("fake network: eventfd");
  std::unique_ptr<FakeNetwork> network(
      new FakeNetwork(std::move(sockets), origin, limits, std::move(wake)));
  try {
    network->thread_ = std::thread([n = network.get()] { n->Serve(); });
  } catch (const std::system_error& e) {
    return Internal(std::string("fake network: cannot start its thread: ") + e.what());
  }
  return network;
}

FakeNetwork::FakeNetwork(SandboxNetworkSockets sockets,
                         std::chrono::steady_clock::time_point origin, FakeNetworkLimits limits,
                         UniqueFd wake)
    : sockets_(std::move(sockets)),
      origin_(origin),
      limits_(limits),
      wake_(std::move(wake)),
      resolver_(limits) {}

FakeNetwork::~FakeNetwork() { (void)Stop(); }

NetworkLog FakeNetwork::Stop() {
  if (!thread_.joinable()) return {};
  const uint64_t one = 1;
  // An eventfd write of 1 cannot block or fail short of a counter overflow.
  (void)!::write(wake_.get(), &one, sizeof(one));
  thread_.join();
  return std::move(log_);
}

int64_t FakeNetwork::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               origin_)
      .count();
}

void FakeNetwork::Serve() {
  std::vector<pollfd> fds;
  bool stopping = false;
  while (!stopping) {
    fds.clear();
    fds.push_back({wake_.get(), POLLIN, 0});
    // At the cap the listener is not served: connections wait in its backlog (the sample's
    // connect still succeeds) until one closes, or are taken in by the final drain.
    const bool room = connections_.size() < limits_.max_connections;
    fds.push_back({room ? sockets_.tcp_listener.get() : -1, POLLIN, 0});
    fds.push_back({sockets_.dns_udp.get(), POLLIN, 0});
    for (const Connection& c : connections_) fds.push_back({c.fd.get(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      Logger("sandbox.network")->error("poll failed: {}", std::strerror(errno));
      break;
    }
    stopping = (fds[0].revents & POLLIN) != 0;
    // Connections first, by their pollfd (AcceptPending appends to connections_).
    size_t kept = 0;
    for (size_t i = 0; i < connections_.size(); ++i) {
      bool open = true;
      if (fds[3 + i].revents != 0) open = ReadConnection(connections_[i], 16);
      if (open) {
        if (kept != i) connections_[kept] = std::move(connections_[i]);
        ++kept;
      }
    }
    connections_.resize(kept);
    if (fds[1].revents != 0) AcceptPending(64, /*keep=*/true);
    if (fds[2].revents != 0) AnswerPending(64);
  }
  // Take in what already arrived: the sample is gone or about to be, so this is bounded by
  // the socket buffers and the backlog.
  AnswerPending(1024);
  for (Connection& c : connections_) ReadConnection(c, 1024);
  connections_.clear();
  AcceptPending(1024, /*keep=*/false);
}

void FakeNetwork::AcceptPending(int budget, bool keep) {
  for (; budget > 0 && (!keep || connections_.size() < limits_.max_connections); --budget) {
    UniqueFd fd(::accept4(sockets_.tcp_listener.get(), nullptr, nullptr,
                          SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;  // EAGAIN, or an error that the next poll reports again
    if (log_.tcp.size() >= limits_.max_records) {
      log_.truncated = true;
      continue;  // closed unrecorded
    }
    TcpSessionRecord record{.at_ms = NowMs()};
    OriginalDestination(fd.get(), &record.address, &record.port);
    log_.tcp.push_back(std::move(record));
    Connection c{.fd = std::move(fd), .record = log_.tcp.size() - 1};
    if (ReadConnection(c, keep ? 16 : 1024) && keep) connections_.push_back(std::move(c));
  }
}

bool FakeNetwork::ReadConnection(Connection& c, int budget) {
  char buffer[kReadChunk];
  TcpSessionRecord& record = log_.tcp[c.record];
  for (; budget > 0; --budget) {
    const ssize_t n = ::recv(c.fd.get(), buffer, sizeof(buffer), 0);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    record.bytes_received += static_cast<uint64_t>(n);
    const size_t keep =
        std::min(static_cast<size_t>(n), kFirstBytesKept - record.first_bytes.size());
    record.first_bytes.append(buffer, keep);
  }
  return true;
}

void FakeNetwork::AnswerPending(int budget) {
  uint8_t datagram[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(in_pktinfo))];
  for (; budget > 0; --budget) {
    sockaddr_storage peer{};
    iovec iov{datagram, sizeof(datagram)};
    msghdr msg{};
    msg.msg_name = &peer;
    msg.msg_namelen = sizeof(peer);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(sockets_.dns_udp.get(), &msg, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    // A datagram larger than the buffer is cut (MSG_TRUNC); the parser sees the prefix,
    // which for a real query holds the question.
    const std::vector<uint8_t> reply =
        resolver_.Answer({datagram, static_cast<size_t>(n)}, NowMs(), log_);
    if (reply.empty()) continue;

    // Answer from the address the query was sent to (see sandbox_network.cc).
    alignas(cmsghdr) char out_control[CMSG_SPACE(sizeof(in6_pktinfo))] = {};
    msghdr out{};
    iovec out_iov{const_cast<uint8_t*>(reply.data()), reply.size()};
    out.msg_name = &peer;
    out.msg_namelen = msg.msg_namelen;
    out.msg_iov = &out_iov;
    out.msg_iovlen = 1;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info;
        std::memcpy(&info, CMSG_DATA(cm), sizeof(info));
        info.ipi6_ifindex = 0;
        out.msg_control = out_control;
        out.msg_controllen = CMSG_SPACE(sizeof(info));
        cmsghdr* o = CMSG_FIRSTHDR(&out);
        o->cmsg_level = IPPROTO_IPV6;
        o->cmsg_type = IPV6_PKTINFO;
        o->cmsg_len = CMSG_LEN(sizeof(info));
        std::memcpy(CMSG_DATA(o), &info, sizeof(info));
      } else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
        in_pktinfo info;
        std::memcpy(&info, CMSG_DATA(cm), sizeof(info));
        info.ipi_spec_dst = info.ipi_addr;
        info.ipi_ifindex = 0;
        out.msg_control = out_control;
        out.msg_controllen = CMSG_SPACE(sizeof(info));
        cmsghdr* o = CMSG_FIRSTHDR(&out);
        o->cmsg_level = IPPROTO_IP;
        o->cmsg_type = IP_PKTINFO;
        o->cmsg_len = CMSG_LEN(sizeof(info));
        std::memcpy(CMSG_DATA(o), &info, sizeof(info));
      }
    }
    // Best effort, like any UDP server: a full buffer or a vanished client loses one answer.
    (void)::sendmsg(sockets_.dns_udp.get(), &out, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
}

}  // namespace quell::sandbox
