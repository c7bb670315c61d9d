#include "agent/indicators/dns_filter.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <thread>

#include "common/files.h"
#include "common/logging.h"
#include "common/unique_fd.h"

namespace quell::agent {
namespace {

auto Log() { return Logger("agent.dns"); }

using Deadline = std::chrono::steady_clock::time_point;

constexpr size_t kMaxMessage = 65535;
constexpr size_t kPlainUdpLimit = 512;  // RFC 1035 §4.2.1, without EDNS

int RemainingMs(Deadline deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on fd until `deadline`; false on timeout or error.
bool WaitFor(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd p{.fd = fd, .events = events, .revents = 0};
    const int ms = RemainingMs(deadline);
    const int rc = ::poll(&p, 1, ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    return (p.revents & (events | POLLHUP | POLLERR)) != 0;
  }
}

bool ReadFull(int fd, uint8_t* buf, size_t n, Deadline deadline) {
  size_t got = 0;
  while (got < n) {
    if (!WaitFor(fd, POLLIN, deadline)) return false;
    const ssize_t r = ::recv(fd, buf + got, n - got, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const uint8_t* buf, size_t n, Deadline deadline) {
  size_t sent = 0;
  while (sent < n) {
    if (!WaitFor(fd, POLLOUT, deadline)) return false;
    const ssize_t r = ::send(fd, buf + sent, n - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) return false;
    sent += static_cast<size_t>(r);
  }
  return true;
}

// [u16 length][message], RFC 1035 §4.2.2.
bool WriteFramed(int fd, std::span<const uint8_t> message, Deadline deadline) {
  // One buffer, one segment: some clients read the length and the message in one recv.
  std::vector<uint8_t> framed;
  framed.reserve(2 + message.size());
  framed.push_back(static_cast<uint8_t>(message.size() >> 8));
  framed.push_back(static_cast<uint8_t>(message.size() & 0xff));
  framed.insert(framed.end(), message.begin(), message.end());
  return WriteFull(fd, framed.data(), framed.size(), deadline);
}

std::optional<std::vector<uint8_t>> ReadFramed(int fd, Deadline deadline) {
  uint8_t len[2];
  if (!ReadFull(fd, len, 2, deadline)) return std::nullopt;
  std::vector<uint8_t> message(static_cast<size_t>((len[0] << 8) | len[1]));
  if (message.empty() || !ReadFull(fd, message.data(), message.size(), deadline)) {
    return std::nullopt;
  }
  return message;
}

struct Upstream {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

std::optional<Upstream> UpstreamAddress(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &res) != 0 || res == nullptr) {
    return std::nullopt;
  }
  Upstream u;
  std::memcpy(&u.addr, res->ai_addr, res->ai_addrlen);
  u.len = res->ai_addrlen;
  ::freeaddrinfo(res);
  return u;
}

Result<UniqueFd> UpstreamSocket(const Upstream& u, int type, uint32_t mark) {
  UniqueFd fd(::socket(u.addr.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus("socket");
  if (mark != 0 && ::setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
    return ErrnoStatus("setsockopt SO_MARK");
  }
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&u.addr), u.len) != 0 &&
      errno != EINPROGRESS) {
    return ErrnoStatus("connect");
  }
  return fd;
}

bool IsAnswerTo(std::span<const uint8_t> answer, std::span<const uint8_t> query) {
  return answer.size() >= kDnsHeaderSize && answer[0] == query[0] && answer[1] == query[1] &&
         (answer[2] & 0x80) != 0;
}

Result<std::vector<uint8_t>> ExchangeUdp(const Upstream& u, std::span<const uint8_t> query,
                                         uint32_t mark, Deadline deadline) {
  QUELL_ASSIGN_OR_RETURN(UniqueFd fd, UpstreamSocket(u, SOCK_DGRAM, mark));
  if (::send(fd.get(), query.data(), query.size(), MSG_NOSIGNAL) < 0) return ErrnoStatus("send");
  std::vector<uint8_t> buf(kMaxMessage);
  for (;;) {
    if (!WaitFor(fd.get(), POLLIN, deadline)) return DeadlineExceeded("no UDP answer");
    const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return ErrnoStatus("recv");  // e.g. ECONNREFUSED: nothing listens there
    std::span<const uint8_t> answer(buf.data(), static_cast<size_t>(n));
    if (!IsAnswerTo(answer, query)) continue;  // stray or spoofed: keep waiting
    buf.resize(static_cast<size_t>(n));
    return buf;
  }
}

Result<std::vector<uint8_t>> ExchangeTcp(const Upstream& u, std::span<const uint8_t> query,
                                         uint32_t mark, Deadline deadline) {
  QUELL_ASSIGN_OR_RETURN(UniqueFd fd, UpstreamSocket(u, SOCK_STREAM, mark));
  if (!WaitFor(fd.get(), POLLOUT, deadline)) return DeadlineExceeded("TCP connect timed out");
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return ErrnoStatus("TCP connect", err);
  if (!WriteFramed(fd.get(), query, deadline)) return Unavailable("TCP send failed");
  auto answer = ReadFramed(fd.get(), deadline);
  if (!answer || !IsAnswerTo(*answer, query)) return Unavailable("no TCP answer");
  return std::move(*answer);
}

Result<UniqueFd> Listen(int family, int type, uint16_t port) {
  UniqueFd fd(::socket(family, type | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus("socket");
  const int one = 1;
  if (type == SOCK_STREAM) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
  } else {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
    len = sizeof(sockaddr_in6);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return ErrnoStatus(std::string("bind ") + (family == AF_INET ? "127.0.0.1" : "[::1]") + ":" +
                       std::to_string(port));
  }
  if (type == SOCK_STREAM && ::listen(fd.get(), 64) != 0) return ErrnoStatus("listen");
  return fd;
}

uint16_t BoundPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

}  // namespace

std::vector<std::string> ParseResolvConf(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    if (size_t c = line.find_first_of("#;"); c != std::string_view::npos) line = line.substr(0, c);
    constexpr std::string_view kKey = "nameserver";
    if (!line.starts_with(kKey) || line.size() == kKey.size() ||
        (line[kKey.size()] != ' ' && line[kKey.size()] != '\t')) {
      continue;
    }
    line.remove_prefix(kKey.size());
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    size_t end = line.find_first_of(" \t\r");
    std::string addr(line.substr(0, end));
    if (!addr.empty() && UpstreamAddress(addr, 53)) out.push_back(std::move(addr));
  }
  return out;
}

struct DnsFilter::Runtime {
  UniqueFd udp4, tcp4, udp6, tcp6;
  UniqueFd wake;  // eventfd: wakes the listener at Stop
  std::atomic<bool> stopping{false};

  struct Job {
    int fd;  // the UDP socket it came in on (answered from the same)
    sockaddr_storage from;
    socklen_t from_len;
    std::vector<uint8_t> bytes;
  };
  std::mutex jobs_mutex;
  std::condition_variable jobs_cv;
  std::deque<Job> jobs;
  std::vector<std::thread> workers;
  std::thread listener;

  struct Conn {
    UniqueFd fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::mutex conns_mutex;
  std::list<std::unique_ptr<Conn>> conns;

  void ReapConnections() {
    std::lock_guard lock(conns_mutex);
    for (auto it = conns.begin(); it != conns.end();) {
      if ((*it)->done) {
        (*it)->thread.join();
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }
};

DnsFilter::DnsFilter(DetectionSink* sink, DnsFilterOptions options)
    : sink_(sink),
      options_(std::move(options)),
      clock_(options_.clock ? *options_.clock : SystemClock::Instance()) {}

DnsFilter::~DnsFilter() { Stop(); }

Status DnsFilter::Start() {
  std::lock_guard lock(run_mutex_);
  if (runtime_) return Status::Ok();
  auto rt = std::make_unique<Runtime>();
  // An ephemeral port must be free for all four sockets: retry a few when one is taken.
  const int attempts = options_.port == 0 ? 16 : 1;
  Status last;
  bool bound = false;
  for (int i = 0; i < attempts && !bound; ++i) {
    auto udp4 = Listen(AF_INET, SOCK_DGRAM, options_.port);
    if (!udp4.ok()) return udp4.status().WithContext("DNS filter");
    const uint16_t port = BoundPort(udp4->get());
    auto tcp4 = Listen(AF_INET, SOCK_STREAM, port);
    if (!tcp4.ok()) {
      last = tcp4.status();
      continue;
    }
    rt->udp4 = std::move(*udp4);
    rt->tcp4 = std::move(*tcp4);
    rt->udp6.Reset();
    rt->tcp6.Reset();
    if (options_.listen_v6) {
      auto udp6 = Listen(AF_INET6, SOCK_DGRAM, port);
      auto tcp6 = udp6.ok() ? Listen(AF_INET6, SOCK_STREAM, port) : Result<UniqueFd>(udp6.status());
      if (udp6.ok() && tcp6.ok()) {
        rt->udp6 = std::move(*udp6);
        rt->tcp6 = std::move(*tcp6);
      } else if (tcp6.status().code() == StatusCode::kAlreadyExists ||
                 tcp6.status().message().find("in use") != std::string::npos) {
        last = tcp6.status();
        continue;  // the port is taken on ::1: try another
      } else {
        Log()->warn("DNS filter: not listening on ::1 ({}); IPv6 DNS queries are not steered",
                    tcp6.status().message());
      }
    }
    port_ = port;
    bound = true;
  }
  if (!bound) return last.WithContext("DNS filter");
  v6_ = rt->udp6.valid();
  rt->wake.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!rt->wake) return ErrnoStatus("eventfd");

  Runtime* r = rt.get();
  for (size_t i = 0; i < std::max<size_t>(1, options_.workers); ++i) {
    r->workers.emplace_back([this, r] {
      for (;;) {
        Runtime::Job job;
        {
          std::unique_lock l(r->jobs_mutex);
          r->jobs_cv.wait(l, [r] { return r->stopping || !r->jobs.empty(); });
          if (r->stopping) return;
          job = std::move(r->jobs.front());
          r->jobs.pop_front();
        }
        std::vector<uint8_t> answer = Answer(job.bytes, /*over_udp=*/true);
        if (answer.empty()) continue;
        ::sendto(job.fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&job.from), job.from_len);
      }
    });
  }
  r->listener = std::thread([this, r] {
    std::vector<uint8_t> buf(kMaxMessage);
    for (;;) {
      pollfd fds[5];
      nfds_t n = 0;
      for (const UniqueFd* fd : {&r->wake, &r->udp4, &r->tcp4, &r->udp6, &r->tcp6}) {
        if (fd->valid()) fds[n++] = pollfd{.fd = fd->get(), .events = POLLIN, .revents = 0};
      }
      if (::poll(fds, n, -1) < 0) {
        if (errno == EINTR) continue;
        Log()->error("DNS filter: poll: {}", std::strerror(errno));
        return;
      }
      if (r->stopping) return;
      for (nfds_t i = 1; i < n; ++i) {
        if ((fds[i].revents & POLLIN) == 0) continue;
        const int fd = fds[i].fd;
        if (fd == r->udp4.get() || fd == r->udp6.get()) {
          Runtime::Job job{.fd = fd, .from = {}, .from_len = sizeof(sockaddr_storage), .bytes = {}};
          const ssize_t got = ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                                         reinterpret_cast<sockaddr*>(&job.from), &job.from_len);
          if (got <= 0) continue;
          job.bytes.assign(buf.begin(), buf.begin() + got);
          std::lock_guard l(r->jobs_mutex);
          if (r->jobs.size() >= options_.max_udp_backlog) continue;  // dropped; client retries
          r->jobs.push_back(std::move(job));
          r->jobs_cv.notify_one();
          continue;
        }
        UniqueFd conn(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) continue;
        r->ReapConnections();
        std::lock_guard l(r->conns_mutex);
        if (r->conns.size() >= options_.max_tcp_connections) continue;  // closed at once
        auto c = std::make_unique<Runtime::Conn>();
        c->fd = std::move(conn);
        Runtime::Conn* cp = c.get();
        c->thread = std::thread([this, r, cp] {
          while (!r->stopping) {
            const Deadline idle = std::chrono::steady_clock::now() + options_.tcp_idle_timeout;
            auto query = ReadFramed(cp->fd.get(), idle);
            if (!query) break;
            std::vector<uint8_t> answer = Answer(*query, /*over_udp=*/false);
            const Deadline send_by = std::chrono::steady_clock::now() + options_.tcp_idle_timeout;
            if (answer.empty() || !WriteFramed(cp->fd.get(), answer, send_by)) break;
          }
          ::shutdown(cp->fd.get(), SHUT_RDWR);
          cp->done = true;
        });
        r->conns.push_back(std::move(c));
      }
    }
  });
  runtime_ = std::move(rt);
  Log()->info("DNS filter: listening on 127.0.0.1:{}{}", port_.load(), v6_ ? " and [::1]" : "");
  return Status::Ok();
}

void DnsFilter::Stop() {
  std::unique_ptr<Runtime> rt;
  {
    std::lock_guard lock(run_mutex_);
    rt = std::move(runtime_);
    port_ = 0;
    v6_ = false;
  }
  if (!rt) return;
  rt->stopping = true;
  const uint64_t one = 1;
  (void)!::write(rt->wake.get(), &one, sizeof one);
  if (rt->listener.joinable()) rt->listener.join();
  {
    std::lock_guard l(rt->jobs_mutex);
    rt->jobs_cv.notify_all();
  }
  for (std::thread& t : rt->workers) t.join();
  {
    std::lock_guard l(rt->conns_mutex);
    for (auto& c : rt->conns) ::shutdown(c->fd.get(), SHUT_RDWR);
  }
  for (auto& c : rt->conns) c->thread.join();
  Log()->info("DNS filter: stopped");
}

bool DnsFilter::running() const {
  std::lock_guard lock(run_mutex_);
  return runtime_ != nullptr;
}

uint16_t DnsFilter::port() const { return port_; }
bool DnsFilter::v6() const { return v6_; }

std::vector<std::string> DnsFilter::Nameservers() {
  std::lock_guard lock(resolv_mutex_);
  struct stat st {};
  if (::stat(options_.resolv_conf.c_str(), &st) != 0) {
    resolv_read_ = false;
    nameservers_.clear();
  } else if (!resolv_read_ || st.st_dev != resolv_stat_.st_dev ||
             st.st_ino != resolv_stat_.st_ino || st.st_size != resolv_stat_.st_size ||
             st.st_mtim.tv_sec != resolv_stat_.st_mtim.tv_sec ||
             st.st_mtim.tv_nsec != resolv_stat_.st_mtim.tv_nsec) {
    auto text = ReadFile(options_.resolv_conf);
    nameservers_ = text.ok() ? ParseResolvConf(*text) : std::vector<std::string>{};
    resolv_stat_ = st;
    resolv_read_ = text.ok();
    Log()->info("DNS filter: upstream nameservers from {}: {}", options_.resolv_conf,
                nameservers_.empty() ? std::string("(none; 127.0.0.1)") : [&] {
                  std::string s;
                  for (const auto& ns : nameservers_) s += (s.empty() ? "" : ", ") + ns;
                  return s;
                }());
  }
  if (nameservers_.empty()) return {"127.0.0.1"};  // resolv.conf(5)'s default
  return nameservers_;
}

std::optional<IndicatorMatch> DnsFilter::MatchName(const DnsName& name) const {
  // The longest suffix that is a well-formed name: a leftmost label the indicator syntax does
  // not allow ("a b.evil.example") must not hide that its parent is blocked.
  for (size_t i = 0; i < name.labels.size(); ++i) {
    std::string suffix;
    for (size_t j = i; j < name.labels.size(); ++j) {
      if (j > i) suffix += '.';
      suffix += name.labels[j];
    }
    auto normal = NormaliseDomain(suffix);
    if (!normal.ok()) continue;
    return options_.match(*normal);
  }
  return std::nullopt;
}

void DnsFilter::Report(const IndicatorMatch& m, const std::string& name, bool blocked) {
  const UnixMillis now = clock_.Now();
  {
    std::lock_guard lock(report_mutex_);
    const std::string key = m.id + "\n" + name;
    if (auto it = reported_.find(key);
        it != reported_.end() && now - it->second < options_.report_suppression.count()) {
      return;
    }
    if (reported_.size() > 100'000) reported_.clear();  // bound memory under a flood of names
    reported_[key] = now;
  }
  Log()->warn("DNS filter: {} {} (indicator {} {} '{}', action {})",
              blocked ? "blocked" : "audited", name, IndicatorTypeName(m.type), m.id, m.value,
              IndicatorActionName(m.action));
  if (!m.generate_alert || sink_ == nullptr) return;
  const std::string title = m.title.empty() ? "indicator " + m.id : m.title;
  Detection d;
  d.detector_id = std::string(kDnsIndicatorDetector);
  d.title = (blocked ? "DNS lookup blocked by indicator: " : "DNS lookup matched indicator: ") + m.value;
  d.description = "A process on the device looked up " + name + "; the name matches the custom " +
                  std::string(IndicatorTypeName(m.type)) + " indicator '" + title + "' (id " +
                  m.id + ", action " + std::string(IndicatorActionName(m.action)) + "). " +
                  (blocked ? "The agent's DNS filter answered NXDOMAIN."
                           : "The query was forwarded (Audit).");
  d.severity = m.severity.empty() ? "Medium" : m.severity;
  d.category = "CommandAndControl";
  d.detection_source = "CustomTi";
  d.threat_name = title;
  d.mitre_techniques = {"T1071.004"};
  d.time = now;
  d.evidence = nlohmann::json::array(
      {{{"@odata.type", "#microsoft.graph.security.urlEvidence"},
        {"roles", {"destination"}},
        {"verdict", "malicious"},
        {"remediationStatus", blocked ? "blocked" : "none"},
        {"detectionStatus", blocked ? "blocked" : "detected"},
        {"url", name},
        {"domainName", name},
        {"indicatorValue", m.value}}});
  d.dedup_key = std::string(kDnsIndicatorDetector) + ":" + m.id + ":" + name;
  sink_->Report(std::move(d));
}

std::vector<uint8_t> DnsFilter::Answer(std::span<const uint8_t> bytes, bool over_udp) {
  ++queries_;
  auto query = ParseDnsQuery(bytes);
  if (!query.ok()) {
    ++malformed_;
    auto header = ParseDnsHeader(bytes);
    if (!header.ok() || header->qr()) return {};  // nothing to answer to
    Log()->debug("DNS filter: malformed query: {}", query.status().message());
    return BuildDnsHeaderOnlyAnswer(*header, DnsRcode::kFormErr);
  }
  if (query->header.opcode() != 0) return BuildDnsAnswer(*query, DnsRcode::kNotImp);
  // RFC 9619: QDCOUNT is 1. A second question would not be matched, so it is not forwarded.
  if (query->header.qdcount != 1) {
    ++malformed_;
    return BuildDnsHeaderOnlyAnswer(query->header, DnsRcode::kFormErr);
  }
  const std::string name = [&] {
    std::string s = query->name.Text();
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }();
  if (std::optional<IndicatorMatch> m = MatchName(query->name)) {
    if (m->blocks()) {
      ++blocked_;
      Report(*m, name, /*blocked=*/true);
      return BuildDnsAnswer(*query, DnsRcode::kNxDomain);
    }
    if (m->action == IndicatorAction::kAudit) {
      ++audited_;
      Report(*m, name, /*blocked=*/false);
    }
  }
  std::vector<uint8_t> answer = Forward(bytes, over_udp);
  if (answer.empty()) {
    ++failed_;
    return BuildDnsAnswer(*query, DnsRcode::kServFail);
  }
  ++forwarded_;
  return answer;
}

std::vector<uint8_t> DnsFilter::Forward(std::span<const uint8_t> query, bool over_udp) {
  for (const std::string& ns : Nameservers()) {
    std::optional<Upstream> up = UpstreamAddress(ns, options_.upstream_port);
    if (!up) continue;
    const Deadline deadline = std::chrono::steady_clock::now() + options_.upstream_timeout;
    auto udp = ExchangeUdp(*up, query, options_.mark, deadline);
    if (!udp.ok()) {
      Log()->debug("DNS filter: {} over UDP: {}", ns, udp.status().ToString());
      continue;
    }
    if ((((*udp)[2]) & 0x02) == 0) return std::move(*udp);  // not truncated
    const Deadline tcp_deadline = std::chrono::steady_clock::now() + options_.upstream_timeout;
    auto tcp = ExchangeTcp(*up, query, options_.mark, tcp_deadline);
    // A UDP client gets the whole answer only when it fits without EDNS; otherwise the
    // truncated one, and it asks again over TCP (which is steered here too).
    if (tcp.ok() && (!over_udp || tcp->size() <= kPlainUdpLimit)) return std::move(*tcp);
    if (!tcp.ok()) Log()->debug("DNS filter: {} over TCP: {}", ns, tcp.status().ToString());
    return std::move(*udp);
  }
  return {};
}

DnsFilter::Counters DnsFilter::counters() const {
  return {.queries = queries_,
          .blocked = blocked_,
          .audited = audited_,
          .forwarded = forwarded_,
          .failed = failed_,
          .malformed = malformed_};
}

}  // namespace quell::agent
