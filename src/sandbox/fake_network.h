// The sandbox's fake network, supervisor half: serves the two sockets ConfigureSandboxNetwork
// made inside the sandbox (sandbox_network.h) and records what the sample asked and sent.
// DNS: every A query gets a sinkhole address of its own from 198.18.0.0/15 (RFC 2544's
// benchmarking range: never a real host), the same one for the same name (any case) within a
// run; AAAA and other types get NOERROR without records. TCP: every connection is accepted
// and read, never answered.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "sandbox/observations.h"
#include "sandbox/sandbox_network.h"

namespace quell::sandbox {

struct FakeNetworkLimits {
  size_t max_records = 10000;      // of each kind (DNS, TCP); beyond: NetworkLog::truncated
  size_t max_connections = 256;    // served at once; beyond, new ones wait in the backlog
  size_t max_names = 16384;        // distinct names given an address; beyond, no records
  uint32_t ttl_seconds = 60;
};

// The sinkhole address of the `index`-th distinct name: 198.18.0.1, 198.18.0.2, ...
// REQUIRES: index < 131070 (the /15 without its first and last address).
std::array<uint8_t, 4> SinkholeAddress(uint32_t index);

// "A", "AAAA", "MX", ... or the number.
std::string DnsTypeName(uint16_t type);

// The fake resolver's decisions, apart from sockets. Not thread-safe.
class SinkholeResolver {
 public:
  explicit SinkholeResolver(const FakeNetworkLimits& limits = {}) : limits_(limits) {}
  // The reply to one datagram, recording the query in `log`. Empty: send nothing (not a
  // query at all, e.g. too short or a response). A query whose question cannot be read gets
  // FORMERR, an opcode other than QUERY NOTIMP; neither is recorded.
  std::vector<uint8_t> Answer(std::span<const uint8_t> datagram, int64_t at_ms, NetworkLog& log);

 private:
  FakeNetworkLimits limits_;
  std::unordered_map<std::string, uint32_t> index_by_name_;  // lowercase name -> index
};

class FakeNetwork {
 public:
  // Serves both sockets on a thread of its own until Stop. `origin`: the sample's release;
  // record times are milliseconds since it.
  static Result<std::unique_ptr<FakeNetwork>> Start(SandboxNetworkSockets sockets,
                                                    std::chrono::steady_clock::time_point origin,
                                                    FakeNetworkLimits limits = {});
  // Stops serving if Stop was not called (what was recorded is dropped).
  ~FakeNetwork();
  FakeNetwork(const FakeNetwork&) = delete;
  FakeNetwork& operator=(const FakeNetwork&) = delete;

  // Stops serving and returns everything recorded. Whatever already reached the sockets is
  // still taken in first (pending connections accepted, queued queries answered, buffered
  // bytes read); then every connection is closed. Call once; later calls return nothing.
  NetworkLog Stop();

 private:
  struct Connection {
    UniqueFd fd;
    size_t record = 0;  // index into log_.tcp
  };

  FakeNetwork(SandboxNetworkSockets sockets, std::chrono::steady_clock::time_point origin,
              FakeNetworkLimits limits, UniqueFd wake);
  void Serve();
  int64_t NowMs() const;
  // Accepts and records pending connections. keep: serve them on (while under the cap);
  // otherwise read what they buffered and close them (the final drain).
  void AcceptPending(int budget, bool keep);
  void AnswerPending(int budget);
  // Reads what is buffered; false when the peer closed or the connection failed.
  bool ReadConnection(Connection& c, int budget);

  SandboxNetworkSockets sockets_;
  std::chrono::steady_clock::time_point origin_;
  FakeNetworkLimits limits_;
  UniqueFd wake_;  // eventfd: Stop writes it
  SinkholeResolver resolver_;
  // Owned by the serving thread until it is joined.
  std::vector<Connection> connections_;
  NetworkLog log_;
  std::thread thread_;
};

}  // namespace quell::sandbox
