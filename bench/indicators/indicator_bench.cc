// quell-indicator-bench [N]: the agent side of issue 4's scale goal (default N = 1,000,000).
//   memory   heap held by an IndicatorSet of N indicators (mallinfo2 delta, and the set's own
//            accounting), mix: 70% SHA-256, 10% SHA-1, 5% MD5, 10% IPs/CIDRs, 5% domains;
//   lookups  ns per MatchFile / MatchIp / MatchDomain, hits and misses;
// Times are CPU time of the benchmark process (fsync waits are not CPU time: the store
// figures are a lower bound on a loaded disk).
//   store    a full snapshot of N in 10,000-indicator chunks applied and persisted, a restore
//            from disk, and a 1,000-indicator delta applied and persisted (fdatasync).
#include <malloc.h>
#include <unistd.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "agent/indicators/indicator_store.h"

using namespace quell;
using namespace quell::agent;

namespace {

std::string Hex(std::mt19937_64& rng, int bytes) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < bytes; ++i) {
    const auto b = static_cast<unsigned>(rng() & 0xff);
    s.push_back(d[b >> 4]);
    s.push_back(d[b & 15]);
  }
  return s;
}

quell::v1::Indicator Make(std::mt19937_64& rng, size_t i) {
  quell::v1::Indicator x;
  x.set_id(std::to_string(100000 + i));
  const unsigned kind = i % 20;
  if (kind < 14) {
    x.set_type("FileSha256");
    x.set_value(Hex(rng, 32));
  } else if (kind < 16) {
    x.set_type("FileSha1");
    x.set_value(Hex(rng, 20));
  } else if (kind == 16) {
    x.set_type("FileMd5");
    x.set_value(Hex(rng, 16));
  } else if (kind < 19) {
    x.set_type("IpAddress");
    const uint32_t a = static_cast<uint32_t>(rng());
    std::string ip = std::to_string(a >> 24 | 1) + "." + std::to_string(a >> 16 & 255) + "." +
                     std::to_string(a >> 8 & 255) + "." + std::to_string(a & 255);
    x.set_value(kind == 18 && i % 3 == 0 ? ip + "/32" : ip);
  } else {
    x.set_type("DomainName");
    x.set_value("host" + std::to_string(i) + ".bad-" + std::to_string(i % 997) + ".example");
  }
  x.set_action(i % 7 == 0 ? "Audit" : "Block");
  x.set_severity("High");
  x.set_title("Indicator " + std::to_string(i));
  x.set_generate_alert(true);
  return x;
}

// CPU seconds of this process since `since` (a CpuNow() value): the machine running the
// benchmark is shared, so wall time would measure the neighbours too.
double CpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}
double Seconds(double since) { return CpuNow() - since; }

size_t HeapBytes() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  std::printf("indicators: %zu\n", n);
  SystemClock& clock = SystemClock::Instance();
  std::vector<std::string> sha256s, ips, domains;

  // ---- memory and insert ----
  const size_t heap0 = HeapBytes();
  auto t0 = CpuNow();
  IndicatorSet set(clock);
  {
    std::mt19937_64 rng(42);
    for (size_t i = 0; i < n; ++i) {
      auto ind = Make(rng, i);
      if (!set.Upsert(ind).ok()) {
        std::fprintf(stderr, "rejected %s\n", ind.value().c_str());
        return 1;
      }
      if (i % 1000 < 20) {  // one of each kind per thousand
        if (ind.type() == "FileSha256") sha256s.push_back(ind.value());
        if (ind.type() == "IpAddress") ips.push_back(ind.value().substr(0, ind.value().find('/')));
        if (ind.type() == "DomainName") domains.push_back("www." + ind.value());
      }
    }
  }
  const double insert_s = Seconds(t0);
  // The sample vectors above are a few KB; count them out roughly by measuring the set alone.
  const size_t heap1 = HeapBytes();
  std::printf("insert: %.2f s (%.0f ns/indicator)\n", insert_s, insert_s * 1e9 / n);
  std::printf("memory: heap delta %.1f MiB, set accounting %.1f MiB (%.1f bytes/indicator)\n",
              (heap1 - heap0) / 1048576.0, set.MemoryBytes() / 1048576.0,
              static_cast<double>(set.MemoryBytes()) / n);

  // ---- lookups ----
  std::mt19937_64 rng(7);
  auto bench = [&](const char* name, auto&& fn, size_t iterations) {
    size_t hits = 0;
    auto t = CpuNow();
    for (size_t i = 0; i < iterations; ++i) hits += fn(i) ? 1 : 0;
    std::printf("%-28s %7.0f ns/lookup (%zu/%zu hits)\n", name, Seconds(t) * 1e9 / iterations,
                hits, iterations);
  };
  const size_t iters = 1'000'000;
  std::vector<std::string> miss_sha;
  for (int i = 0; i < 1000; ++i) miss_sha.push_back(Hex(rng, 32));
  bench("MatchFile sha256 hit", [&](size_t i) { return set.MatchFile(sha256s[i % sha256s.size()], "", "").has_value(); }, iters);
  bench("MatchFile 3 digests miss", [&](size_t i) {
    const std::string& s = miss_sha[i % miss_sha.size()];
    return set.MatchFile(s, s.substr(0, 40), s.substr(0, 32)).has_value();
  }, iters);
  bench("MatchIp hit", [&](size_t i) { return set.MatchIp(ips[i % ips.size()]).has_value(); }, iters);
  bench("MatchIp miss (v6)", [&](size_t i) { return set.MatchIp("2001:db8::" + std::to_string(i % 9000 + 1)).has_value(); }, iters);
  bench("MatchDomain subdomain hit", [&](size_t i) { return set.MatchDomain(domains[i % domains.size()]).has_value(); }, iters);
  bench("MatchDomain miss", [&](size_t i) { return set.MatchDomain("a.b.c.notlisted" + std::to_string(i % 1000) + ".org").has_value(); }, iters);

  // ---- store: full sync, restore, delta ----
  const std::string dir = "/tmp/quell-indicator-bench-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  {
    auto store = IndicatorStore::Open({.dir = dir});
    if (!store.ok()) return 1;
    std::mt19937_64 rng2(42);
    std::vector<quell::v1::IndicatorDelta> chunks;
    for (size_t i = 0; i < n; i += 10'000) {
      quell::v1::IndicatorDelta d;
      d.set_to_version(1);
      d.set_full(true);
      d.set_more(i + 10'000 < n);
      for (size_t j = i; j < std::min(n, i + 10'000); ++j) *d.add_upserts() = Make(rng2, j);
      chunks.push_back(std::move(d));
    }
    auto t = CpuNow();
    for (const auto& c : chunks) {
      if (!(*store)->Apply(c).ok()) return 1;
    }
    std::printf("store: full snapshot of %zu applied + persisted in %.2f s (%.1f MiB on disk)\n",
                n, Seconds(t), std::filesystem::file_size(dir + "/snapshot") / 1048576.0);
    quell::v1::IndicatorDelta delta;
    delta.set_from_version(1);
    delta.set_to_version(2);
    for (size_t j = 0; j < 1000; ++j) *delta.add_upserts() = Make(rng2, n + j);
    for (size_t j = 0; j < 1000; ++j) delta.add_removed_ids(std::to_string(100000 + j * 7));
    t = CpuNow();
    if (!(*store)->Apply(delta).ok()) return 1;
    std::printf("store: delta of 1,000 upserts + 1,000 removals applied + persisted in %.1f ms\n",
                Seconds(t) * 1e3);
  }
  {
    malloc_trim(0);
    const size_t before = HeapBytes();
    auto t = CpuNow();
    auto store = IndicatorStore::Open({.dir = dir});
    if (!store.ok()) return 1;
    std::printf("store: restore of %zu indicators (version %llu) in %.2f s, heap held after "
                "restore %.1f MiB\n",
                (*store)->size(), static_cast<unsigned long long>((*store)->version()), Seconds(t),
                (HeapBytes() - before) / 1048576.0);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
