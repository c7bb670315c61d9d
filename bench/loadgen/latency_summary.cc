#include "bench/loadgen/latency_summary.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace quell::bench {

LatencySummary Summarize(std::vector<double> samples_ms) {
  LatencySummary out;
  out.count = samples_ms.size();
  if (samples_ms.empty()) return out;
  std::sort(samples_ms.begin(), samples_ms.end());
  auto rank = [&](double p) {
    size_t k = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(samples_ms.size())));
    return samples_ms[std::clamp<size_t>(k, 1, samples_ms.size()) - 1];
  };
  out.p50_ms = rank(50);
  out.p90_ms = rank(90);
  out.p99_ms = rank(99);
  out.max_ms = samples_ms.back();
  out.mean_ms = std::accumulate(samples_ms.begin(), samples_ms.end(), 0.0) /
                static_cast<double>(samples_ms.size());
  return out;
}

nlohmann::json ToJson(const LatencySummary& s) {
  auto round = [](double v) { return std::round(v * 100.0) / 100.0; };
  return {{"count", s.count},          {"p50", round(s.p50_ms)}, {"p90", round(s.p90_ms)},
          {"p99", round(s.p99_ms)},    {"max", round(s.max_ms)}, {"mean", round(s.mean_ms)}};
}

}  // namespace quell::bench
