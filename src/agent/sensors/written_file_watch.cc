#include "agent/sensors/written_file_watch.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "agent/restriction/mount_table.h"
#include "agent/restriction/restriction_controller.h"  // kFileIndicatorDetector
#include "common/files.h"
#include "common/logging.h"

namespace quell::agent::sensors {
namespace {

auto Log() { return Logger("agent.written-files"); }

// Above this many remembered versions the memory is cleared (a re-hash is only a cost).
constexpr size_t kMaxJudged = 16384;

Result<std::string> RootMountId(const std::string& path) {
  QUELL_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::istringstream in(text);
  std::string root_id;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point;
    fields >> id >> parent >> devno >> root >> mount_point;
    if (mount_point == "/") root_id = id;
  }
  if (root_id.empty()) return Internal("no root mount in " + path);
  return root_id;
}

// As RestrictionController's guard: the namespace inodes, else the root mount ids.
Result<bool> SameMountNamespaceAsInit() {
  struct stat self {}, init {};
  if (stat("/proc/self/ns/mnt", &self) == 0 && stat("/proc/1/ns/mnt", &init) == 0) {
    return self.st_dev == init.st_dev && self.st_ino == init.st_ino;
  }
  QUELL_ASSIGN_OR_RETURN(std::string mine, RootMountId("/proc/self/mountinfo"));
  QUELL_ASSIGN_OR_RETURN(std::string init_root, RootMountId("/proc/1/mountinfo"));
  return mine == init_root;
}

std::string FdPath(int fd) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

bool Under(const std::string& path, const std::string& dir) {
  if (dir.empty()) return false;
  const std::string d = dir.back() == '/' ? dir : dir + "/";
  return path.starts_with(d) || path + "/" == d;
}

int64_t Ns(const timespec& t) { return t.tv_sec * 1'000'000'000LL + t.tv_nsec; }

}  // namespace

// ---- FanotifyWrittenFileSource -----------------------------------------------------------

FanotifyWrittenFileSource::~FanotifyWrittenFileSource() { Close(); }

Status FanotifyWrittenFileSource::Open() {
  std::lock_guard lock(mutex_);
  if (fan_) return FailedPrecondition("written-file watch already open");
  UniqueFd fan(fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK,
                             O_RDONLY | O_LARGEFILE | O_CLOEXEC));
  if (!fan) return ErrnoStatus("fanotify_init(FAN_CLASS_NOTIF)");
  UniqueFd mi(open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!mi) return ErrnoStatus("open /proc/self/mountinfo");
  fan_ = std::move(fan);
  mountinfo_ = std::move(mi);
  return Status::Ok();
}

Status FanotifyWrittenFileSource::MarkMount(const std::string& mount_point) {
  std::lock_guard lock(mutex_);
  if (!fan_) return FailedPrecondition("written-file watch is not open");
  // FAN_MARK_MOUNT, never FAN_MARK_FILESYSTEM (see the header).
  if (fanotify_mark(fan_.get(), FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD,
                    mount_point.c_str()) != 0) {
    return ErrnoStatus("fanotify_mark " + mount_point);
  }
  return Status::Ok();
}

Result<WrittenFileBatch> FanotifyWrittenFileSource::Wait(std::chrono::milliseconds timeout) {
  int fan = -1, mi = -1;
  {
    std::lock_guard lock(mutex_);
    fan = fan_.get();
    mi = mountinfo_.get();
  }
  if (fan < 0) return FailedPrecondition("written-file watch is not open");
  pollfd fds[2] = {{fan, POLLIN, 0}, {mi, POLLPRI, 0}};
  int n = poll(fds, 2, static_cast<int>(timeout.count()));
  WrittenFileBatch out;
  if (n < 0) {
    if (errno == EINTR) return out;
    return ErrnoStatus("poll fanotify");
  }
  if (n == 0) return out;
  if (fds[1].revents & (POLLPRI | POLLERR)) {
    out.mounts_changed = true;
    char buf[4096];  // re-arm: the next change is signalled after a read from the start
    lseek(mi, 0, SEEK_SET);
    while (read(mi, buf, sizeof buf) > 0) {
    }
  }
  if (fds[0].revents & POLLIN) {
    alignas(fanotify_event_metadata) char buf[16384];
    ssize_t len = read(fan, buf, sizeof buf);
    if (len < 0) {
      if (errno == EAGAIN || errno == EINTR) return out;
      return ErrnoStatus("read fanotify");
    }
    for (auto* m = reinterpret_cast<fanotify_event_metadata*>(buf); FAN_EVENT_OK(m, len);
         m = FAN_EVENT_NEXT(m, len)) {
      UniqueFd fd(m->fd);  // closed on every path below unless handed over
      if (m->vers != FANOTIFY_METADATA_VERSION) return Internal("fanotify metadata version mismatch");
      if (m->mask & FAN_Q_OVERFLOW) {
        out.overflow = true;
        continue;
      }
      if (!fd) continue;
      out.files.push_back(WrittenFileEvent{.fd = std::move(fd), .pid = m->pid});
    }
  }
  return out;
}

void FanotifyWrittenFileSource::Close() {
  std::lock_guard lock(mutex_);
  fan_.Reset();  // removes every mark
  mountinfo_.Reset();
}

// ---- WriteDebouncer ----------------------------------------------------------------------

WriteDebouncer::WriteDebouncer(UnixMillis settle_ms, UnixMillis max_delay_ms, size_t max_pending)
    : settle_ms_(settle_ms), max_delay_ms_(std::max(max_delay_ms, settle_ms)),
      max_pending_(max_pending) {}

WriteDebouncer::Added WriteDebouncer::Add(FileKey key, WrittenFileEvent event, UnixMillis now) {
  if (auto it = pending_.find(key); it != pending_.end()) {
    it->second.event = std::move(event);  // the older fd closes here
    it->second.due = std::min(now + settle_ms_, it->second.first + max_delay_ms_);
    return Added::kCoalesced;
  }
  if (pending_.size() >= max_pending_) return Added::kDropped;
  pending_.emplace(key, Pending{.event = std::move(event), .first = now, .due = now + settle_ms_});
  return Added::kNew;
}

std::vector<WrittenFileEvent> WriteDebouncer::TakeDue(UnixMillis now) {
  std::vector<std::pair<UnixMillis, WrittenFileEvent>> due;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.due <= now) {
      due.emplace_back(it->second.first, std::move(it->second.event));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  std::stable_sort(due.begin(), due.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<WrittenFileEvent> out;
  out.reserve(due.size());
  for (auto& [first, event] : due) out.push_back(std::move(event));
  return out;
}

std::optional<UnixMillis> WriteDebouncer::NextDue() const {
  std::optional<UnixMillis> next;
  for (const auto& [key, p] : pending_) {
    if (!next || p.due < *next) next = p.due;
  }
  return next;
}

// ---- WrittenFileWatch --------------------------------------------------------------------

WrittenFileWatch::WrittenFileWatch(WrittenFileSource& source, DetectionSink* sink,
                                   WrittenFileWatchOptions options)
    : source_(source),
      sink_(sink),
      options_(std::move(options)),
      self_(getpid()),
      debouncer_(options_.settle.count(), options_.max_delay.count(), options_.max_pending) {
  if (!options_.in_initial_mount_namespace) {
    options_.in_initial_mount_namespace = SameMountNamespaceAsInit;
  }
}

WrittenFileWatch::~WrittenFileWatch() { (void)SetActive(false); }

UnixMillis WrittenFileWatch::Now() const {
  return (options_.clock ? *options_.clock : SystemClock::Instance()).Now();
}

Status WrittenFileWatch::CheckNamespace() const {
  if (!options_.require_private_mount_namespace) return Status::Ok();
  Result<bool> shared = options_.in_initial_mount_namespace();
  if (!shared.ok()) {
    return FailedPrecondition("restriction.require_private_mount_namespace is set and the mount "
                              "namespace cannot be checked: " + shared.status().message());
  }
  if (*shared) {
    return FailedPrecondition("restriction.require_private_mount_namespace is set but the agent "
                              "runs in the initial mount namespace; refusing to watch this "
                              "machine's own mounts for written files");
  }
  return Status::Ok();
}

Status WrittenFileWatch::MarkMounts() {
  Result<std::string> text = ReadFile(options_.mountinfo_path);
  if (!text.ok()) return text.status().WithContext("reading the mount table");
  uint64_t marked = 0;
  for (const std::string& mount_point : GuardedMountPoints(ParseMountInfo(*text))) {
    if (Status s = source_.MarkMount(mount_point); !s.ok()) {
      Log()->warn("cannot watch writes on mount {}: {}", mount_point, s.ToString());
      continue;
    }
    ++marked;
  }
  if (marked == 0) return FailedPrecondition("no mount could be watched for written files");
  std::lock_guard lock(stats_mutex_);
  stats_.marks = marked;
  return Status::Ok();
}

Status WrittenFileWatch::SetActive(bool on) {
  std::lock_guard control(control_mutex_);
  if (on == active_) return Status::Ok();
  if (on) {
    QUELL_RETURN_IF_ERROR(CheckNamespace());
    QUELL_RETURN_IF_ERROR(source_.Open().WithContext("opening the written-file watch"));
    worker_ = std::jthread([this](std::stop_token stop) { Work(stop); });
    reader_ = std::jthread([this](std::stop_token stop) { Read(stop); });
    if (Status s = MarkMounts(); !s.ok()) {
      active_ = true;
      (void)SetActiveLockedOff();
      return s;
    }
    active_ = true;
    Log()->info("watching written files on {} mount(s) for BlockAndRemediate indicators",
                GetStats().marks);
    return Status::Ok();
  }
  return SetActiveLockedOff();
}

Status WrittenFileWatch::SetActiveLockedOff() {
  if (reader_.joinable()) {
    reader_.request_stop();
    reader_.join();
  }
  if (worker_.joinable()) {
    worker_.request_stop();
    cv_.notify_all();
    worker_.join();
  }
  source_.Close();
  {
    std::lock_guard lock(mutex_);
    debouncer_.Clear();
  }
  if (active_) Log()->info("written-file watch stopped");
  active_ = false;
  return Status::Ok();
}

bool WrittenFileWatch::active() const {
  std::lock_guard control(control_mutex_);
  return active_;
}

WrittenFileWatch::Stats WrittenFileWatch::GetStats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void WrittenFileWatch::Read(std::stop_token stop) {
  bool overflow_logged = false;
  while (!stop.stop_requested()) {
    Result<WrittenFileBatch> batch = source_.Wait(options_.wait_slice);
    if (!batch.ok()) {
      if (batch.status().message() != last_error_) {
        Log()->error("written-file watch: {}", batch.status().ToString());
        last_error_ = batch.status().message();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    last_error_.clear();
    Stats delta;
    bool added = false;
    for (WrittenFileEvent& e : batch->files) {
      ++delta.events;
      if (e.pid == self_) {
        ++delta.own;
        continue;
      }
      struct stat st {};
      if (fstat(e.fd.get(), &st) != 0) {
        ++delta.errors;
        continue;
      }
      if (!S_ISREG(st.st_mode) || st.st_nlink == 0) {
        ++delta.not_regular;
        continue;
      }
      if (static_cast<uint64_t>(st.st_size) > options_.max_file_bytes) {
        ++delta.too_large;
        continue;
      }
      std::lock_guard lock(mutex_);
      switch (debouncer_.Add(FileKey{st.st_dev, st.st_ino}, std::move(e), Now())) {
        case WriteDebouncer::Added::kNew: added = true; break;
        case WriteDebouncer::Added::kCoalesced: ++delta.coalesced; added = true; break;
        case WriteDebouncer::Added::kDropped: ++delta.dropped; break;
      }
    }
    if (added) cv_.notify_all();
    if (batch->overflow) {
      ++delta.overflows;
      if (!overflow_logged) {
        Log()->warn("written-file watch: the kernel queue overflowed, some written files were "
                    "not checked (they are still checked when executed)");
        overflow_logged = true;
      }
    }
    {
      std::lock_guard lock(stats_mutex_);
      stats_.events += delta.events;
      stats_.own += delta.own;
      stats_.errors += delta.errors;
      stats_.not_regular += delta.not_regular;
      stats_.too_large += delta.too_large;
      stats_.coalesced += delta.coalesced;
      stats_.dropped += delta.dropped;
      stats_.overflows += delta.overflows;
    }
    if (batch->mounts_changed) {
      if (Status s = MarkMounts(); !s.ok()) Log()->warn("re-marking mounts: {}", s.ToString());
    }
  }
}

void WrittenFileWatch::Work(std::stop_token stop) {
  while (!stop.stop_requested()) {
    std::vector<WrittenFileEvent> due;
    {
      std::unique_lock lock(mutex_);
      std::optional<UnixMillis> next = debouncer_.NextDue();
      const UnixMillis now = Now();
      if (!next || *next > now) {
        const auto wait = next ? std::chrono::milliseconds(std::min<UnixMillis>(*next - now, 1000))
                               : std::chrono::milliseconds(1000);
        cv_.wait_for(lock, stop, wait, [&] {
          std::optional<UnixMillis> n = debouncer_.NextDue();
          return n && *n <= Now();
        });
        if (stop.stop_requested()) return;
      }
      due = debouncer_.TakeDue(Now());
    }
    for (WrittenFileEvent& e : due) {
      if (stop.stop_requested()) return;
      Judge(std::move(e));
    }
  }
}

void WrittenFileWatch::Judge(WrittenFileEvent event) {
  auto count = [&](uint64_t Stats::*field) {
    std::lock_guard lock(stats_mutex_);
    ++(stats_.*field);
  };
  struct stat st {};
  if (fstat(event.fd.get(), &st) != 0) return count(&Stats::errors);
  if (st.st_nlink == 0) return count(&Stats::not_regular);  // deleted meanwhile
  const std::string path = FdPath(event.fd.get());
  for (const std::string& dir : options_.skip_dirs) {
    if (Under(path, dir)) return count(&Stats::skipped_dir);
  }
  const auto version = std::make_tuple(st.st_dev, st.st_ino, st.st_size, Ns(st.st_mtim), Ns(st.st_ctim));
  {
    std::lock_guard lock(mutex_);
    if (judged_.contains(version)) return count(&Stats::unchanged);
  }
  Result<FileHashes> hashes = HashFd(event.fd.get(), options_.max_file_bytes);
  if (!hashes.ok()) {
    if (hashes.status().code() == StatusCode::kResourceExhausted) return count(&Stats::too_large);
    Log()->debug("cannot hash written file {}: {}", path, hashes.status().ToString());
    return count(&Stats::errors);
  }
  count(&Stats::hashed);
  {
    std::lock_guard lock(mutex_);
    if (judged_.size() >= kMaxJudged) judged_.clear();
    judged_.emplace(version, true);
  }
  if (!options_.match_file) return;
  std::optional<IndicatorMatch> m = options_.match_file({.fd = event.fd.get(),
                                                        .path = path,
                                                        .sha256 = hashes->sha256,
                                                        .sha1 = hashes->sha1,
                                                        .md5 = hashes->md5});
  if (!m || m->action == IndicatorAction::kAllowed) return;
  count(&Stats::matched);
  WrittenFileHit hit{.path = path, .hashes = std::move(*hashes), .pid = event.pid, .indicator = *m};
  Log()->warn("written file {} (sha256 {}) by pid {} matches indicator {} ({} {})", path,
              hit.hashes.sha256, hit.pid, m->id, IndicatorTypeName(m->type),
              IndicatorActionName(m->action));
  if (m->generate_alert) Report(hit);
  if (m->action == IndicatorAction::kBlockAndRemediate && options_.remediate) {
    count(&Stats::remediations);
    options_.remediate(hit);
  }
}

void WrittenFileWatch::Report(const WrittenFileHit& hit) {
  if (sink_ == nullptr) return;
  const IndicatorMatch& m = hit.indicator;
  const bool remediate = m.action == IndicatorAction::kBlockAndRemediate;
  const std::string name = m.title.empty() ? "indicator " + m.id : m.title;
  Detection d;
  d.detector_id = std::string(kFileIndicatorDetector);
  d.title = (remediate ? "File written and remediated by indicator: " : "Written file matched indicator: ") +
            BaseName(hit.path);
  d.description = "The file " + hit.path + " was written (closed by pid " +
                  std::to_string(hit.pid) + "); its " + std::string(IndicatorTypeName(m.type)) +
                  " " + m.value + " matches the custom indicator '" + name + "' (id " + m.id +
                  ", action " + std::string(IndicatorActionName(m.action)) + ")." +
                  (remediate ? " It is being stopped and quarantined without waiting for it to run."
                             : "");
  d.severity = m.severity.empty() ? "Medium" : m.severity;
  d.category = "Malware";
  d.detection_source = "CustomTi";
  d.threat_name = name;
  d.mitre_techniques = {"T1105"};  // ingress tool transfer: a known-bad file landed
  d.time = Now();
  d.evidence = nlohmann::json::array(
      {{{"@odata.type", "#microsoft.graph.security.fileEvidence"},
        {"detectionStatus", "detected"},
        {"verdict", "malicious"},
        {"remediationStatus", remediate ? "running" : "none"},
        {"roles", nlohmann::json::array()},
        {"fileDetails",
         {{"fileName", BaseName(hit.path)},
          {"filePath", DirName(hit.path)},
          {"sha256", hit.hashes.sha256},
          {"sha1", hit.hashes.sha1},
          {"md5", hit.hashes.md5},
          {"fileSize", hit.hashes.size}}}}});
  d.dedup_key = std::string(kFileIndicatorDetector) + ":" + m.id + ":" + hit.hashes.sha256;
  sink_->Report(std::move(d));
  std::lock_guard lock(stats_mutex_);
  ++stats_.reports;
}

}  // namespace quell::agent::sensors
