// Percentiles of a set of durations, for the human summary and the JSON line.
#pragma once

#include <cstddef>
#include <vector>

#include <nlohmann/json.hpp>

namespace quell::bench {

struct LatencySummary {
  size_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};

// Nearest-rank percentiles (the smallest value with at least p% of samples at or below it).
// All zero when `samples_ms` is empty.
LatencySummary Summarize(std::vector<double> samples_ms);

nlohmann::json ToJson(const LatencySummary& summary);

}  // namespace quell::bench
