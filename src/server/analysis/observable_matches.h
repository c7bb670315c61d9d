// Deep analysis reports checked against the fleet's Block indicators: a sample that resolves a
// blocked domain, contacts a blocked address or drops a blocked file is known bad, whatever
// the sandbox's own verdict says.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "server/store/store.h"

namespace quell::server {

struct ObservableMatch {
  std::string kind;   // "domain", "ip" or "droppedFile"
  std::string value;  // the observable as the report has it
  const Indicator* indicator = nullptr;  // points into the `indicators` given
};

// The observables of `report` (its "observables" object: domains, ips, droppedFiles[].sha256)
// that match an indicator of `indicators` whose action is Block or BlockAndRemediate and that
// has not expired at `now`. Domains match the indicator's domain and its subdomains
// (case-insensitive); IPs match an address or an IPv4 CIDR; dropped files match FileSha256.
// Each observable is reported once, with the first indicator that matches it.
std::vector<ObservableMatch> MatchBlockedObservables(const nlohmann::json& report,
                                                     const std::vector<Indicator>& indicators,
                                                     UnixMillis now);

// The alert evidence (Graph alertEvidence objects) for the matches and the sample.
nlohmann::json MatchEvidence(const std::vector<ObservableMatch>& matches,
                             const SampleFile& sample);

}  // namespace quell::server
