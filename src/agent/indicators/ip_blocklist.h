// IpBlocklist: enforces IpAddress Block/BlockAndRemediate indicators in an nftables table of
// its own, `inet quell_indicators`:
//   set v4 / v6   interval sets (CIDR ranges) with a counter per element;
//   chains input / output / forward (priority filter - 5) dropping packets whose source or
//   destination is in a set — so traffic is dropped in both directions.
// The table exists only while something is blocked. Sync() makes the sets hold exactly the
// given ranges: the first Sync (at agent start: restore) replaces the table in one
// transaction; later ones add and delete only the elements that changed (a delta of 1,000
// is one small transaction), falling back to a full replace if that fails (e.g. an
// administrator deleted the table). Nested ranges are reduced first (10.1.0.0/16 inside a
// blocked 10.0.0.0/8 is not an element: interval sets refuse overlaps).
//
// Hits: PollHits() reads the per-element counters and reports one detection per element
// whose packet count grew (and whose indicator has generate_alert), at most once per
// `report_suppression` per element. Counters, not nflog: no extra socket or thread, works
// unchanged inside network namespaces; the price is that the remote address of a hit is
// known only as the blocked range.
//
// Scope: acts in the network namespace its NftRunner was created in (a lab host's own).
// Thread-safety: all methods are serialised.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/detect/detection.h"
#include "agent/indicators/indicator_set.h"
#include "agent/indicators/nft_runner.h"
#include "common/clock.h"
#include "common/status.h"

namespace quell::agent {

inline constexpr std::string_view kIpIndicatorDetector = "quell.indicators.ip";

struct IpBlocklistOptions {
  std::string table = "quell_indicators";
  const Clock* clock = nullptr;  // nullptr = the system clock
  std::chrono::milliseconds report_suppression{60'000};
  // The indicator that blocks a range ("10.0.0.0/8"), for hit reports.
  std::function<std::optional<IndicatorMatch>(const std::string& cidr)> indicator_for;
};

// Drops ranges contained in other ranges of the list; sorted (v4 first), no duplicates.
std::vector<IpRange> ReduceRanges(std::vector<IpRange> ranges);

class IpBlocklist {
 public:
  // `nft` must outlive this; `sink` may be nullptr.
  IpBlocklist(NftRunner& nft, DetectionSink* sink, IpBlocklistOptions options);

  Status Sync(std::vector<IpRange> ranges);
  // Removes the table. Idempotent.
  Status Clear();
  // Reports grown counters; returns the number of detections reported.
  Result<size_t> PollHits();

  // Elements currently in the kernel sets (after reduction).
  std::set<IpRange> Installed() const;

 private:
  std::string TableScript(const std::set<IpRange>& ranges) const;

  NftRunner& nft_;
  DetectionSink* sink_;
  IpBlocklistOptions options_;
  const Clock& clock_;

  mutable std::mutex mutex_;
  bool synced_ = false;                   // the kernel table matches installed_
  std::set<IpRange> installed_;
  std::map<std::string, uint64_t> packets_;      // cidr -> last seen counter
  std::map<std::string, UnixMillis> reported_;   // cidr -> last report
};

}  // namespace quell::agent
