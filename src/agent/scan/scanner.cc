#include "agent/scan/scanner.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/files.h"
#include "common/hash.h"
#include "common/logging.h"

namespace quell::agent::scan {
namespace {

int64_t NowNs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// Reads whole files into a buffer reused across files. Not mmap: a file truncated by
// someone else while mapped would raise SIGBUS in the agent (libclamav's own fmap avoids
// file mappings for the same reason). Memory per scan thread is bounded by max_file_bytes.
class FileReader {
 public:
  // Opens `path` and reads it; fills `st` from the opened descriptor (not the path) so the
  // verdict is about exactly the bytes read. REQUIRES: the caller checked the size limit.
  Status Read(const std::string& path, uint64_t max_bytes, struct stat& st) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && (errno == EPERM || errno == ELOOP)) {
      // O_NOATIME needs ownership; /proc/<pid>/exe is a symlink by design.
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    }
    if (fd < 0) return ErrnoStatus("open " + path);
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    if (::fstat(fd, &st) != 0) return ErrnoStatus("fstat " + path);
    if (!S_ISREG(st.st_mode)) return FailedPrecondition(path + " is not a regular file");
    if (static_cast<uint64_t>(st.st_size) > max_bytes) return ResourceExhausted(path + " too large");
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    const size_t want = static_cast<size_t>(st.st_size);
    if (buf_.size() < want) buf_.resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t n = ::pread(fd, buf_.data() + got, want - got, static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus("read " + path);
      if (n == 0) break;  // truncated meanwhile: scan what is there
      got += static_cast<size_t>(n);
    }
    len_ = got;
    return Status::Ok();
  }
  const void* data() const { return buf_.data(); }
  size_t size() const { return len_; }
  // Gives back memory after an unusually large file.
  void Trim() {
    if (buf_.size() > kKeepBytes) {
      buf_.clear();
      buf_.shrink_to_fit();
    }
  }

 private:
  static constexpr size_t kKeepBytes = 16u << 20;
  std::vector<char> buf_;
  size_t len_ = 0;
};

void AppendDirFingerprint(const std::string& dir, std::ostringstream& out) {
  auto names = ListFiles(dir);
  if (!names.ok()) return;
  for (const std::string& name : *names) {
    struct stat st {};
    std::string p = dir + "/" + name;
    if (::stat(p.c_str(), &st) != 0) continue;
    out << p << ':' << st.st_size << ':' << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec << ':'
        << st.st_ctim.tv_sec << '.' << st.st_ctim.tv_nsec << '\n';
  }
}

}  // namespace

std::string SignatureVersion(const std::vector<std::string>& clam_dirs,
                             const std::vector<std::string>& yara_dirs) {
  std::ostringstream out;
  out << "clamav\n";
  for (const auto& d : clam_dirs) AppendDirFingerprint(d, out);
  out << "yara\n";
  for (const auto& d : yara_dirs) AppendDirFingerprint(d, out);
  return Sha256Hex(out.str()).substr(0, 16);
}

Result<std::shared_ptr<const ScanEngines>> ScanEngines::Load(
    const std::vector<std::string>& clam_dirs, const std::vector<std::string>& yara_dirs,
    const ClamLimits& limits) {
  auto engines = std::make_shared<ScanEngines>();
  engines->signature_version = SignatureVersion(clam_dirs, yara_dirs);
  std::vector<std::string> skipped;
  QUELL_ASSIGN_OR_RETURN(engines->clam, ClamEngine::Load(clam_dirs, limits, &skipped));
  for (const auto& d : skipped) engines->warnings.push_back("ClamAV database dir missing: " + d);
  YaraLoadReport report;
  QUELL_ASSIGN_OR_RETURN(engines->yara, YaraRules::Load(yara_dirs, &report));
  for (const auto& d : report.skipped_dirs) engines->warnings.push_back("YARA rule dir missing: " + d);
  for (const auto& p : report.problems) engines->warnings.push_back("YARA rule error: " + p);
  if (engines->clam.signature_count() == 0 && engines->yara.rule_count() == 0) {
    std::string where;
    for (const auto& d : clam_dirs) where += (where.empty() ? "" : ", ") + d;
    for (const auto& d : yara_dirs) where += (where.empty() ? "" : ", ") + d;
    return FailedPrecondition("no ClamAV signatures and no YARA rules loaded (looked in " + where +
                              "); install a ClamAV database (freshclam) or YARA rules");
  }
  return std::shared_ptr<const ScanEngines>(std::move(engines));
}

void LowerCurrentThreadPriority() {
  const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 19);
  constexpr int kIoprioWhoProcess = 1;
  constexpr int kIoprioClassIdle = 3;
  constexpr int kIoprioClassShift = 13;
  (void)::syscall(SYS_ioprio_set, kIoprioWhoProcess, tid, kIoprioClassIdle << kIoprioClassShift);
}

DutyCycleThrottle::DutyCycleThrottle(double share) : share_(std::clamp(share, 0.01, 1.0)) {
  window_wall_start_ns_ = NowNs(CLOCK_MONOTONIC);
  window_cpu_start_ns_ = NowNs(CLOCK_THREAD_CPUTIME_ID);
}

void DutyCycleThrottle::Pace(std::stop_token stop) {
  if (share_ >= 1.0) return;
  const int64_t wall = NowNs(CLOCK_MONOTONIC) - window_wall_start_ns_;
  const int64_t cpu = NowNs(CLOCK_THREAD_CPUTIME_ID) - window_cpu_start_ns_;
  // Time the window must last for `cpu` to be `share_` of it.
  const int64_t needed = static_cast<int64_t>(static_cast<double>(cpu) / share_);
  if (needed > wall) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait_for(lock, stop, std::chrono::nanoseconds(needed - wall), [] { return false; });
  }
  // Short windows so a burst long ago does not buy a burst now.
  if (NowNs(CLOCK_MONOTONIC) - window_wall_start_ns_ > 2'000'000'000LL) {
    window_wall_start_ns_ = NowNs(CLOCK_MONOTONIC);
    window_cpu_start_ns_ = NowNs(CLOCK_THREAD_CPUTIME_ID);
  }
}

// SHA-256, SHA-1 and MD5 of bytes already in memory (the file the engines just scanned).
static FileHashes HashBuffer(const void* data, size_t size) {
  static const char* kHex = "0123456789abcdef";
  auto digest = [&](const EVP_MD* md) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data, size, out, &len, md, nullptr);
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
      hex.push_back(kHex[out[i] >> 4]);
      hex.push_back(kHex[out[i] & 15]);
    }
    return hex;
  };
  return FileHashes{.sha256 = digest(EVP_sha256()), .sha1 = digest(EVP_sha1()),
                    .md5 = digest(EVP_md5()), .size = size};
}

Result<ScanSummary> RunScan(const ScanEngines& engines, const std::vector<FileItem>& files,
                            const ScannerOptions& options, ScanCache* cache,
                            const std::function<void(const ScanHit&)>& on_hit,
                            const std::function<void(const ScanProgress&)>& on_progress,
                            std::stop_token stop) {
  static auto log = Logger("scan");
  const auto start = std::chrono::steady_clock::now();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  unsigned threads = options.threads == 0 ? cores : options.threads;
  threads = std::clamp(threads, 1u, 32u);
  threads = static_cast<unsigned>(std::min<size_t>(threads, std::max<size_t>(files.size(), 1)));
  // The ceiling is for the whole machine; each thread gets an equal share of it.
  const double machine_share = std::clamp(options.cpu_limit_percent, 1u, 100u) / 100.0;
  const double per_thread = options.cpu_limit_percent >= 100
                                ? 1.0
                                : std::min(1.0, machine_share * cores / threads);

  uint64_t bytes_total = 0;
  for (const FileItem& f : files) bytes_total += f.size;
  const std::string cache_version = engines.signature_version + options.cache_version_suffix;

  std::atomic<size_t> next{0};
  std::atomic<uint64_t> files_done{0}, bytes_done{0}, detections{0};
  std::atomic<uint64_t> scanned{0}, cached{0}, too_large{0}, failed{0}, bytes_scanned{0};
  std::atomic<unsigned> running{threads};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ScanHit> hits;

  auto worker = [&](std::stop_token) {
    if (options.lower_priority) LowerCurrentThreadPriority();
    DutyCycleThrottle throttle(per_thread);
    FileReader file;
    for (;;) {
      if (stop.stop_requested()) break;
      const size_t i = next.fetch_add(1);
      if (i >= files.size()) break;
      const FileItem& item = files[i];
      auto done = [&](uint64_t bytes) {
        files_done.fetch_add(1);
        bytes_done.fetch_add(bytes);
      };
      if (cache != nullptr && cache->IsKnownClean(item, cache_version)) {
        cached.fetch_add(1);
        done(item.size);
        continue;
      }
      if (item.size > options.max_file_bytes) {
        too_large.fetch_add(1);
        done(item.size);
        continue;
      }
      struct stat st {};
      if (Status s = file.Read(item.open_path, options.max_file_bytes, st); !s.ok()) {
        if (s.code() == StatusCode::kResourceExhausted) {  // grew past the limit since listing
          too_large.fetch_add(1);
          done(item.size);
          continue;
        }
        failed.fetch_add(1);
        log->debug("skip {}: {}", item.display_path, s.message());
        done(item.size);
        continue;
      }
      FileItem now = item;  // identity of the bytes actually read
      now.size = static_cast<uint64_t>(st.st_size);
      now.mtime_ns = st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec;
      now.ctime_ns = st.st_ctim.tv_sec * 1'000'000'000LL + st.st_ctim.tv_nsec;
      std::vector<ScanHit> found;
      bool error = false;
      if (file.size() > 0) {
        auto clam = engines.clam.loaded()
                        ? engines.clam.Scan(file.data(), file.size(), item.display_path)
                        : Result<std::optional<ClamHit>>(std::optional<ClamHit>());
        if (!clam.ok()) {
          error = true;
          log->warn("{}", clam.status().message());
        } else if (clam->has_value()) {
          found.push_back({"quell.av.clamav", (*clam)->threat_name, item.display_path,
                           (*clam)->member_path, "", now.size});
        }
        auto yara = engines.yara.Scan(file.data(), file.size(), options.yara_timeout_seconds);
        if (!yara.ok()) {
          error = true;
          log->warn("{}: {}", item.display_path, yara.status().message());
        } else {
          for (const std::string& rule : *yara) {
            found.push_back({"quell.av.yara", rule, item.display_path, "", "", now.size});
          }
        }
      }
      std::optional<FileHashes> hashes;
      if (options.match_hashes && file.size() > 0) {
        hashes = HashBuffer(file.data(), file.size());
        if (std::optional<ScanHit> hit = options.match_hashes(*hashes, item.display_path)) {
          hit->size = now.size;
          found.push_back(std::move(*hit));
        }
      }
      scanned.fetch_add(1);
      bytes_scanned.fetch_add(now.size);
      if (error) failed.fetch_add(1);
      if (!found.empty()) {
        const std::string sha =
            hashes ? hashes->sha256
                   : Sha256Hex(std::string_view(static_cast<const char*>(file.data()), file.size()));
        for (ScanHit& h : found) {
          h.sha256 = sha;
          detections.fetch_add(1);
          if (on_hit) on_hit(h);
          std::lock_guard lock(mu);
          hits.push_back(std::move(h));
        }
      } else if (!error && cache != nullptr) {
        cache->MarkClean(now, cache_version);
      }
      file.Trim();
      done(item.size);
      throttle.Pace(stop);
    }
    {
      std::lock_guard lock(mu);
      running.fetch_sub(1);
    }
    cv.notify_all();
  };

  auto snapshot = [&] {
    ScanProgress p;
    p.files_total = files.size();
    p.files_done = files_done.load();
    p.bytes_total = bytes_total;
    p.bytes_done = bytes_done.load();
    p.detections = detections.load();
    p.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    if (p.bytes_done > 0 && p.bytes_total >= p.bytes_done) {
      p.remaining_ms = static_cast<int64_t>(static_cast<double>(p.elapsed_ms) *
                                            static_cast<double>(p.bytes_total - p.bytes_done) /
                                            static_cast<double>(p.bytes_done));
    }
    return p;
  };

  {
    std::vector<std::jthread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker);
    std::unique_lock lock(mu);
    while (running.load() > 0) {
      cv.wait_for(lock, std::chrono::milliseconds(options.progress_interval_ms));
      if (running.load() == 0) break;
      lock.unlock();
      if (on_progress) on_progress(snapshot());
      lock.lock();
    }
  }  // joins

  if (stop.stop_requested()) return Cancelled("scan cancelled");
  if (on_progress) on_progress(snapshot());
  ScanSummary summary;
  summary.files_scanned = scanned.load();
  summary.files_cached = cached.load();
  summary.files_too_large = too_large.load();
  summary.files_failed = failed.load();
  summary.bytes_scanned = bytes_scanned.load();
  summary.hits = std::move(hits);
  std::sort(summary.hits.begin(), summary.hits.end(), [](const ScanHit& a, const ScanHit& b) {
    return std::tie(a.path, a.detector_id, a.threat_name) <
           std::tie(b.path, b.detector_id, b.threat_name);
  });
  summary.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
  return summary;
}

}  // namespace quell::agent::scan
