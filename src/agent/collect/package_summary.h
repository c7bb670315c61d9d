// The summary report at the root of an investigation package — what Defender calls
// CollectionSummaryReport: per topic, what was collected (name, source, size, truncated) and
// what could not be and why, plus the limits and whether the package is complete. Written as
// JSON for tools and as a self-contained HTML page for people.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "agent/collect/package_staging.h"
#include "common/clock.h"

namespace quell::agent::collect {

inline constexpr char kSummaryJsonName[] = "CollectionSummaryReport.json";
inline constexpr char kSummaryHtmlName[] = "CollectionSummaryReport.html";

struct PackageInfo {
  std::string action_id;
  std::string computer_name;
  UnixMillis started = 0;
  UnixMillis finished = 0;
  std::vector<std::string> topics;  // in package order, including topics with nothing in them
};

nlohmann::json SummaryJson(const PackageInfo& info, const PackageStaging& staging);
// The page for `summary` (SummaryJson's output); every value is HTML-escaped.
std::string SummaryHtml(const nlohmann::json& summary);

// Writes `summary` (SummaryJson's output) as both files into the staging directory's root
// (outside the size cap: a package always says what it holds).
Status WriteSummary(const nlohmann::json& summary, const PackageStaging& staging);

}  // namespace quell::agent::collect
