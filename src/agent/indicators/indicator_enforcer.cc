#include "agent/indicators/indicator_enforcer.h"

#include "common/logging.h"

namespace quell::agent {
namespace {
auto Log() { return Logger("agent.indicators"); }
}  // namespace

IndicatorEnforcer::IndicatorEnforcer(IndicatorStore& store, IndicatorEnforcerOptions options)
    : store_(store),
      options_(std::move(options)),
      clock_(options_.clock ? *options_.clock : SystemClock::Instance()) {}

Status IndicatorEnforcer::Apply() {
  std::lock_guard lock(mutex_);
  return ApplyLocked();
}

Status IndicatorEnforcer::ApplyLocked() {
  size_t file_blocks = 0;
  size_t file_remediations = 0;
  size_t domains = 0;
  std::vector<IpRange> ranges;
  store_.Read([&](const IndicatorSet& set) {
    file_blocks = set.CountFileBlocks();
    if (options_.set_written_file_watch) file_remediations = set.CountFileRemediations();
    if (options_.set_dns_filter) domains = set.CountDomainEnforced();
    if (options_.ip_blocklist != nullptr) ranges = set.BlockedIpRanges();
    next_expiry_ = set.NextExpiry();
  });
  Status first;
  if (options_.set_file_gate) {
    const size_t others = options_.other_file_blocks ? options_.other_file_blocks() : 0;
    const bool want = file_blocks + others > 0;
    if (Status s = options_.set_file_gate(want); !s.ok()) {
      Log()->error("file indicators: cannot {} the exec gate: {}", want ? "open" : "close",
                   s.ToString());
      first = s;
    } else {
      if (want != file_gate_) {
        Log()->info("file indicators: {} blocking hash indicator(s), {} other blocked hash(es); "
                    "exec gate {}",
                    file_blocks, others, want ? "on" : "off");
      }
      file_gate_ = want;
    }
  }
  if (options_.ip_blocklist != nullptr) {
    if (Status s = options_.ip_blocklist->Sync(std::move(ranges)); !s.ok()) {
      Log()->error("IP indicators: {}", s.ToString());
      if (first.ok()) first = s;
    }
  }
  if (options_.set_dns_filter) {
    const bool want = domains > 0;
    if (Status s = options_.set_dns_filter(want); !s.ok()) {
      Log()->error("domain indicators: cannot {} the DNS filter: {}", want ? "start" : "stop",
                   s.ToString());
      if (first.ok()) first = s;
    } else {
      if (want != dns_filter_) {
        Log()->info("domain indicators: {} enforced DomainName/Url indicator(s); DNS filter {}",
                    domains, want ? "on" : "off");
      }
      dns_filter_ = want;
    }
  }
  if (options_.set_written_file_watch) {
    const bool want = file_remediations > 0;
    if (Status s = options_.set_written_file_watch(want); !s.ok()) {
      Log()->error("file indicators: cannot {} the written-file watch: {}",
                   want ? "start" : "stop", s.ToString());
      if (first.ok()) first = s;
    } else {
      if (want != written_file_watch_) {
        Log()->info("file indicators: {} BlockAndRemediate hash indicator(s); written-file "
                    "watch {}", file_remediations, want ? "on" : "off");
      }
      written_file_watch_ = want;
    }
  }
  dirty_ = !first.ok();
  return first;
}

void IndicatorEnforcer::Tick() {
  const UnixMillis now = clock_.Now();
  bool expired, retry;
  {
    std::lock_guard lock(mutex_);
    expired = next_expiry_ != 0 && now >= next_expiry_;
    retry = dirty_;
  }
  // Purge notifies the store's listeners, which call Apply (outside our lock).
  if (expired && store_.Purge() == 0) {
    std::lock_guard lock(mutex_);
    (void)ApplyLocked();  // nothing to purge (already gone): recompute the next expiry
  } else if (retry && !expired) {
    std::lock_guard lock(mutex_);
    (void)ApplyLocked();
  }
  if (options_.ip_blocklist == nullptr) return;
  {
    std::lock_guard lock(mutex_);
    if (now < next_poll_) return;
    next_poll_ = now + options_.hit_poll_interval.count();
  }
  if (auto hits = options_.ip_blocklist->PollHits(); !hits.ok()) {
    Log()->warn("IP indicators: cannot read hit counters: {}", hits.status().ToString());
  }
}

bool IndicatorEnforcer::file_gate_wanted() const {
  std::lock_guard lock(mutex_);
  return file_gate_;
}

bool IndicatorEnforcer::dns_filter_wanted() const {
  std::lock_guard lock(mutex_);
  return dns_filter_;
}

UnixMillis IndicatorEnforcer::next_expiry() const {
  std::lock_guard lock(mutex_);
  return next_expiry_;
}

}  // namespace quell::agent
