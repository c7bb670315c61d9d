// WrittenFileWatch: BlockAndRemediate acts on files as they are written, not only when they
// are executed. A fanotify notification group (FAN_CLASS_NOTIF, FAN_CLOSE_WRITE) with MOUNT
// marks on the guarded mounts of the agent's own mount namespace (never filesystem marks:
// those would reach every namespace sharing the filesystem, e.g. the machine running a lab)
// reports each file closed after being opened for writing. The file is hashed (SHA-256, SHA-1,
// MD5 in one pass) and matched against the file-hash indicators:
//   BlockAndRemediate  `remediate` is called (it queues stop-and-quarantine) and, with
//                      generateAlert, a detection says the file was written and is remediated;
//   Block, Audit       a detection when generateAlert (the exec gate blocks Block at exec);
//   Allowed, no match  nothing.
// Skipped: the agent's own writes (pid == getpid()), files under `skip_dirs` (its state dir),
// non-regular files, files already deleted, files over `max_file_bytes`, and a version
// (dev, ino, size, mtime, ctime) already judged. Repeated closes of one inode are coalesced
// (WriteDebouncer) so a file rewritten in a loop is hashed about once per `settle`, and at the
// latest `max_delay` after its first pending close.
//
// Active only while wanted (SetActive; the agent turns it on while a live BlockAndRemediate
// file-hash indicator exists, through IndicatorEnforcerOptions::set_written_file_watch).
// The fanotify queue is the kernel's default (16384 events): on overflow events are lost,
// which is counted and logged; the exec gate still catches a lost file when it runs.
//
// Threads: a reader drains the fanotify queue (fstat only) into the debouncer; a worker hashes
// and matches, so a large file never stalls the queue.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "agent/detect/detection.h"
#include "agent/indicators/file_indicator_match.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace quell::agent::sensors {

// One file closed after writing, as the kernel reported it.
struct WrittenFileEvent {
  UniqueFd fd;   // read-only fd of the file (opened by the kernel); owned by the receiver
  pid_t pid = 0; // the process that closed it (thread group id)
};

struct WrittenFileBatch {
  std::vector<WrittenFileEvent> files;
  bool overflow = false;        // the kernel queue overflowed: events were lost
  bool mounts_changed = false;  // the mount table changed: re-read it and mark new mounts
};

// The kernel-facing part, faked in unit tests. One thread calls Wait; Open/MarkMount/Close
// are called by the owner while Wait is not running (Close may also interrupt it).
class WrittenFileSource {
 public:
  virtual ~WrittenFileSource() = default;
  virtual Status Open() = 0;  // FailedPrecondition if already open
  // Adds a mount mark (the caller's mount namespace). Marking twice is harmless.
  virtual Status MarkMount(const std::string& mount_point) = 0;
  // Up to `timeout`; Ok with nothing on timeout.
  virtual Result<WrittenFileBatch> Wait(std::chrono::milliseconds timeout) = 0;
  virtual void Close() = 0;  // removes every mark; idempotent
};

// fanotify_init(FAN_CLASS_NOTIF) + FAN_MARK_MOUNT FAN_CLOSE_WRITE; mount table changes through
// POLLPRI on /proc/self/mountinfo.
class FanotifyWrittenFileSource final : public WrittenFileSource {
 public:
  FanotifyWrittenFileSource() = default;
  ~FanotifyWrittenFileSource() override;
  FanotifyWrittenFileSource(const FanotifyWrittenFileSource&) = delete;
  FanotifyWrittenFileSource& operator=(const FanotifyWrittenFileSource&) = delete;

  Status Open() override;
  Status MarkMount(const std::string& mount_point) override;
  Result<WrittenFileBatch> Wait(std::chrono::milliseconds timeout) override;
  void Close() override;

 private:
  std::mutex mutex_;
  UniqueFd fan_;
  UniqueFd mountinfo_;
};

// Identity of an inode.
struct FileKey {
  dev_t dev = 0;
  ino_t ino = 0;
  auto operator<=>(const FileKey&) const = default;
};

// Coalesces closes of one inode: an event is due `settle` after the latest close of its inode,
// but never later than `max_delay` after the first close still pending. A newer event replaces
// the pending one (its fd is closed). Pure logic over an injected time; not thread-safe.
class WriteDebouncer {
 public:
  WriteDebouncer(UnixMillis settle_ms, UnixMillis max_delay_ms, size_t max_pending);

  enum class Added { kNew, kCoalesced, kDropped };  // kDropped: `max_pending` inodes pending
  Added Add(FileKey key, WrittenFileEvent event, UnixMillis now);
  // The due events, oldest first; they leave the debouncer.
  std::vector<WrittenFileEvent> TakeDue(UnixMillis now);
  // When the next event is due; nullopt when nothing is pending.
  std::optional<UnixMillis> NextDue() const;
  size_t pending() const { return pending_.size(); }
  void Clear() { pending_.clear(); }

 private:
  struct Pending {
    WrittenFileEvent event;
    UnixMillis first = 0, due = 0;
  };
  UnixMillis settle_ms_, max_delay_ms_;
  size_t max_pending_;
  std::map<FileKey, Pending> pending_;
};

// What a written file matched.
struct WrittenFileHit {
  std::string path;
  FileHashes hashes;
  pid_t pid = 0;  // the writer
  IndicatorMatch indicator;
};

struct WrittenFileWatchOptions {
  uint64_t max_file_bytes = 256ull << 20;  // larger files are not hashed (not matched)
  std::vector<std::string> skip_dirs;      // absolute dirs whose files are never judged
  std::chrono::milliseconds settle{100};
  std::chrono::milliseconds max_delay{2000};
  size_t max_pending = 4096;  // inodes waiting (each holds an fd); more are dropped, counted
  std::chrono::milliseconds wait_slice{200};  // how often the reader checks for stop
  std::string mountinfo_path = "/proc/self/mountinfo";
  // Refuse to activate in PID 1's mount namespace (restriction.require_private_mount_namespace).
  bool require_private_mount_namespace = false;
  // Default compares /proc/self/ns/mnt with /proc/1/ns/mnt. Tests replace it.
  std::function<Result<bool>()> in_initial_mount_namespace;
  const Clock* clock = nullptr;  // nullptr = the system clock; drives the debouncer
  // The indicator that applies to the written file (its fd, path and hashes: hash indicators
  // and, for a signed PE, certificate ones). Called on the worker.
  std::function<std::optional<IndicatorMatch>(const FileToMatch& file)> match_file;
  // A BlockAndRemediate match. Called on the worker: it must queue the work, not do it.
  std::function<void(const WrittenFileHit&)> remediate;
};

class WrittenFileWatch {
 public:
  // `source` must outlive this; `sink` may be nullptr (matches are then only logged).
  WrittenFileWatch(WrittenFileSource& source, DetectionSink* sink, WrittenFileWatchOptions options);
  ~WrittenFileWatch();  // deactivates
  WrittenFileWatch(const WrittenFileWatch&) = delete;
  WrittenFileWatch& operator=(const WrittenFileWatch&) = delete;

  // On: checks the namespace guard, opens the source, starts the threads and marks every
  // guarded mount (FailedPrecondition when none could be marked; the source is closed again).
  // Off: stops the threads, closes the source and drops pending events. Idempotent;
  // thread-safe.
  Status SetActive(bool on);
  bool active() const;

  struct Stats {
    uint64_t events = 0;          // closes received
    uint64_t own = 0;             // the agent's own writes, skipped
    uint64_t not_regular = 0;     // not a regular file, or already deleted
    uint64_t too_large = 0;
    uint64_t coalesced = 0;       // closes merged into a pending one
    uint64_t dropped = 0;         // too many inodes pending
    uint64_t skipped_dir = 0;     // under skip_dirs
    uint64_t unchanged = 0;       // this version was already judged
    uint64_t hashed = 0;
    uint64_t matched = 0;         // Block, BlockAndRemediate or Audit
    uint64_t remediations = 0;    // remediate called
    uint64_t reports = 0;         // detections reported
    uint64_t errors = 0;          // fstat/hash failures
    uint64_t overflows = 0;
    uint64_t marks = 0;           // mounts marked by the last (re)marking
  };
  Stats GetStats() const;

 private:
  Status SetActiveLockedOff();  // REQUIRES: control_mutex_ held
  Status MarkMounts();
  Status CheckNamespace() const;
  void Read(std::stop_token stop);
  void Work(std::stop_token stop);
  void Judge(WrittenFileEvent event);
  void Report(const WrittenFileHit& hit);
  UnixMillis Now() const;

  WrittenFileSource& source_;
  DetectionSink* sink_;
  WrittenFileWatchOptions options_;
  const pid_t self_;

  mutable std::mutex control_mutex_;  // SetActive
  bool active_ = false;

  std::mutex mutex_;  // guards debouncer_ and judged_
  std::condition_variable_any cv_;
  WriteDebouncer debouncer_;
  // Versions judged, so a close without changes (or a reread) costs no hash. Bounded.
  std::map<std::tuple<dev_t, ino_t, off_t, int64_t, int64_t>, bool> judged_;

  mutable std::mutex stats_mutex_;
  Stats stats_;
  std::string last_error_;  // reader: logged once per distinct error

  std::jthread worker_;
  std::jthread reader_;
};

}  // namespace quell::agent::sensors
