// IndicatorStore: the agent's indicators as the server last sent them, applied from
// IndicatorDelta messages, persisted crash-safely in <state_dir>/indicators/ and restored at
// start (before any enforcement is built from them).
//
// On disk (binary layout; every frame is [u32 length LE][u32 CRC-32 LE][IndicatorDelta]):
//   snapshot  a full snapshot: frames with full = true, the last with more = false and
//             to_version = the snapshot's version. Written as snapshot.tmp, fsync'd, renamed.
//   log       first frame: a marker {from_version = to_version = the snapshot's version};
//             then every delta applied since, chunk by chunk, each delta ending with a frame
//             with more = false. Appended and fdatasync'd BEFORE the delta is applied in
//             memory; restore replays only whole deltas (a torn tail is cut off), and ignores
//             a log whose marker does not name the snapshot's version.
// When the log outgrows the snapshot, the snapshot is rewritten from memory.
//
// Chunked transfers (more = true): a full snapshot is staged into a second IndicatorSet and
// snapshot.tmp as chunks arrive and replaces the live set only with its last chunk; a delta's
// chunks are held until the last. AbortPartial() (called at every new session) drops a
// half-received transfer: the server resends from the version in the next Hello.
//
// Thread-safety: Apply/AbortPartial from one thread (the channel's reader); Purge and
// lookups from any thread (a shared lock, held for one lookup).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "agent/indicators/indicator_set.h"
#include "common/clock.h"
#include "common/status.h"
#include "quell/v1/agent.pb.h"

namespace quell::agent {

struct IndicatorStoreOptions {
  std::string dir;  // <state_dir>/indicators; created (0700) if missing
  const Clock* clock = nullptr;  // nullptr = the system clock; decides expiry
  // The log is folded into a new snapshot when it is larger than this and the snapshot.
  uint64_t compact_log_bytes = 16ull << 20;
  size_t snapshot_chunk = 10'000;  // indicators per frame when the snapshot is rewritten
};

class IndicatorStore {
 public:
  // Restores the persisted state (an empty store when there is none). Internal when the
  // snapshot is unreadable (it was fsync'd and renamed whole, so that is not a crash).
  static Result<std::unique_ptr<IndicatorStore>> Open(IndicatorStoreOptions options);
  ~IndicatorStore();

  struct Outcome {
    bool complete = false;        // the delta's last chunk arrived: version() moved
    bool out_of_sync = false;     // from_version did not match: ignored (ack the current
                                  // version so the server resends from there)
    uint64_t version = 0;         // version() after this call
    size_t upserts = 0, removals = 0, rejected = 0;  // of the completed delta
  };
  // Applies one message. Errors only when the state cannot be persisted (nothing applied
  // then; the transfer must be resent).
  Result<Outcome> Apply(const quell::v1::IndicatorDelta& delta);
  // Drops a half-received chunked transfer.
  void AbortPartial();
  // Drops expired indicators from memory (they already no longer match); returns how many.
  size_t Purge();

  // The version applied and persisted (0 = none).
  uint64_t version() const;
  size_t size() const;

  std::optional<IndicatorMatch> MatchFile(std::string_view sha256, std::string_view sha1,
                                          std::string_view md5) const;
  std::optional<IndicatorMatch> MatchIp(std::string_view address) const;
  std::optional<IndicatorMatch> MatchDomain(std::string_view name) const;
  std::optional<IndicatorMatch> FindById(std::string_view id) const;
  // Runs `fn` with the set under the shared lock (for building enforcement).
  void Read(const std::function<void(const IndicatorSet&)>& fn) const;

  // Called on the applying thread after each completed delta and after Purge removed
  // something (not under the lock). Register before the first Apply.
  void OnChange(std::function<void()> fn) { listeners_.push_back(std::move(fn)); }

 private:
  explicit IndicatorStore(IndicatorStoreOptions options);
  Status Restore();
  Status WriteSnapshotFromMemory();
  Status StartLog(uint64_t base_version);
  Status AppendLog(const std::vector<quell::v1::IndicatorDelta>& chunks);
  void Notify();

  IndicatorStoreOptions options_;
  const Clock& clock_;
  mutable std::shared_mutex mutex_;
  IndicatorSet set_;       // guarded by mutex_
  uint64_t version_ = 0;   // guarded by mutex_
  uint64_t snapshot_bytes_ = 0, log_bytes_ = 0;

  // A transfer in progress (applying thread only).
  struct Partial;
  std::unique_ptr<Partial> partial_;
  std::vector<std::function<void()>> listeners_;
};

}  // namespace quell::agent
