// DnsFilter: the agent's DNS resolver that enforces DomainName and Url indicators. It listens
// on UDP and TCP at 127.0.0.1 and ::1 (one port for all four sockets); DnsSteering's nftables
// table redirects the host's port-53 queries to it. For each query:
//   - the name of the first question is matched (the name, then each parent) with `match`
//     (IndicatorStore::MatchDomain: DomainName indicators and the host of Url indicators;
//     Allowed wins);
//   - Block / BlockAndRemediate: answered NXDOMAIN here; nothing leaves the host;
//   - Audit, Allowed, no match: forwarded as the client sent it (same bytes, so EDNS, DNSSEC
//     bits and the id are kept) to the nameservers of resolv.conf, each tried in order with
//     `upstream_timeout`; UDP first and TCP when the UDP answer is truncated (TC). The
//     upstream answer is relayed unchanged; SERVFAIL when no nameserver answers.
//   - a query that cannot be read (truncated, pointer loop, QR set, no question): FORMERR, or
//     dropped when even the header is missing. Nothing unreadable is forwarded: a name the
//     filter cannot see must not pass it.
// The upstream sockets carry SO_MARK `mark`, which the steering table lets through, so
// forwarding does not loop back into the filter (also when resolv.conf names 127.0.0.53).
// resolv.conf is re-read when its inode, size or mtime changes (checked per query).
//
// Hits (Block and Audit) of indicators with generate_alert are reported to `sink` as
// detections "quell.indicators.dns", at most once per (indicator, name) per
// `report_suppression`.
//
// Threads: Start() spawns one listener thread, `workers` threads that answer UDP queries
// (forwarding blocks a worker for up to the upstream timeouts), and one thread per TCP
// connection (at most `max_tcp_connections`; idle ones close after `tcp_idle_timeout`).
// Stop() joins them all. Start/Stop/Answer are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <vector>

#include "agent/detect/detection.h"
#include "common/dns_message.h"
#include "agent/indicators/dns_steering.h"
#include "agent/indicators/indicator_set.h"
#include "common/clock.h"
#include "common/status.h"

namespace quell::agent {

inline constexpr std::string_view kDnsIndicatorDetector = "quell.indicators.dns";

struct DnsFilterOptions {
  uint16_t port = 0;  // 0: an ephemeral port chosen at Start (port() tells which)
  bool listen_v6 = true;  // also ::1 (skipped with a log line when the host has no ::1)
  std::string resolv_conf = "/etc/resolv.conf";
  uint16_t upstream_port = 53;  // nameservers' port (tests use their own)
  std::chrono::milliseconds upstream_timeout{2000};  // per nameserver and transport
  uint32_t mark = kDnsFilterMark;  // SO_MARK of upstream sockets; 0 = none (unprivileged tests)
  size_t workers = 4;
  size_t max_udp_backlog = 256;  // queued UDP queries; more are dropped (the client retries)
  size_t max_tcp_connections = 32;
  std::chrono::milliseconds tcp_idle_timeout{5000};
  std::chrono::milliseconds report_suppression{60'000};
  const Clock* clock = nullptr;  // nullptr = the system clock
  // The indicator for a (normalised, lowercase) name or one of its parents; REQUIRED.
  std::function<std::optional<IndicatorMatch>(std::string_view name)> match;
};

// The numeric addresses of `nameserver` lines, in order (resolv.conf(5); others ignored).
std::vector<std::string> ParseResolvConf(std::string_view text);

class DnsFilter {
 public:
  // `sink` may be nullptr (hits are only logged).
  DnsFilter(DetectionSink* sink, DnsFilterOptions options);
  ~DnsFilter();
  DnsFilter(const DnsFilter&) = delete;
  DnsFilter& operator=(const DnsFilter&) = delete;

  // Binds the sockets and starts the threads; Ok when already running. Unavailable when the
  // port is taken.
  Status Start();
  // Closes the sockets and joins every thread. Idempotent.
  void Stop();
  bool running() const;
  uint16_t port() const;  // the bound port (0 when not running)
  bool v6() const;        // listening on ::1 too

  // The answer to one query as the listeners give it (empty: drop it). Blocks while
  // forwarding. `over_udp`: the answer must fit a UDP client (see dns_filter.cc).
  std::vector<uint8_t> Answer(std::span<const uint8_t> query, bool over_udp);

  // The nameservers in use (resolv.conf re-read if it changed; 127.0.0.1 when it names none).
  std::vector<std::string> Nameservers();

  struct Counters {
    uint64_t queries = 0, blocked = 0, audited = 0, forwarded = 0, failed = 0, malformed = 0;
  };
  Counters counters() const;

 private:
  struct Runtime;
  std::optional<IndicatorMatch> MatchName(const DnsName& name) const;
  void Report(const IndicatorMatch& m, const std::string& name, bool blocked);
  std::vector<uint8_t> Forward(std::span<const uint8_t> query, bool over_udp);

  DetectionSink* sink_;
  DnsFilterOptions options_;
  const Clock& clock_;

  mutable std::mutex run_mutex_;  // Start/Stop
  std::unique_ptr<Runtime> runtime_;
  std::atomic<uint16_t> port_{0};
  std::atomic<bool> v6_{false};

  std::mutex resolv_mutex_;
  struct stat resolv_stat_{};
  bool resolv_read_ = false;
  std::vector<std::string> nameservers_;

  std::mutex report_mutex_;
  std::map<std::string, UnixMillis> reported_;  // "<indicator id>\n<name>" -> last report

  std::atomic<uint64_t> queries_{0}, blocked_{0}, audited_{0}, forwarded_{0}, failed_{0},
      malformed_{0};
};

}  // namespace quell::agent
