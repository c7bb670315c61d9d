#include "agent/indicators/indicator_store.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "common/files.h"
#include "common/logging.h"

namespace quell::agent {
namespace {

auto Log() { return Logger("agent.indicators"); }

constexpr uint32_t kMaxFrame = 256u << 20;

uint32_t Crc32(const std::string& data) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (unsigned char b : data) c = kTable[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i) & 0xff));
}

std::string Frame(const quell::v1::IndicatorDelta& d) {
  std::string payload = d.SerializeAsString();
  std::string out;
  out.reserve(payload.size() + 8);
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutU32(out, Crc32(payload));
  out += payload;
  return out;
}

// A file descriptor that is closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Status WriteAll(int fd, const std::string& data, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + what);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus("open " + dir);
  if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync " + dir);
  return Status::Ok();
}

// Reads frames one by one from a file, holding one frame at a time (a 1M-indicator snapshot
// is ~100 MiB: it is never in memory whole). Stops (nullopt) at the end or at the first
// torn/corrupt frame, leaving offset() at the end of the last good frame.
class FrameReader {
 public:
  // NotFound when the file does not exist.
  static Result<FrameReader> Open(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return ErrnoStatus("open " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat " + path);
    return FrameReader(std::move(fd), static_cast<uint64_t>(st.st_size));
  }

  std::optional<quell::v1::IndicatorDelta> Next() {
    if (size_ - pos_ < 8) return std::nullopt;
    unsigned char header[8];
    if (!ReadAt(pos_, header, 8)) return std::nullopt;
    uint32_t len = 0, crc = 0;
    for (int i = 0; i < 4; ++i) {
      len |= static_cast<uint32_t>(header[i]) << (8 * i);
      crc |= static_cast<uint32_t>(header[4 + i]) << (8 * i);
    }
    if (len > kMaxFrame || size_ - pos_ - 8 < len) return std::nullopt;
    buffer_.resize(len);
    if (!ReadAt(pos_ + 8, buffer_.data(), len)) return std::nullopt;
    if (Crc32(buffer_) != crc) return std::nullopt;
    quell::v1::IndicatorDelta d;
    if (!d.ParseFromString(buffer_)) return std::nullopt;
    pos_ += 8 + len;
    return d;
  }
  uint64_t offset() const { return pos_; }
  uint64_t size() const { return size_; }

 private:
  FrameReader(Fd fd, uint64_t size) : fd_(std::move(fd)), size_(size) {}
  bool ReadAt(uint64_t offset, void* out, size_t n) {
    auto* p = static_cast<char*>(out);
    while (n > 0) {
      ssize_t got = ::pread(fd_.get(), p, n, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      p += got;
      n -= static_cast<size_t>(got);
      offset += static_cast<uint64_t>(got);
    }
    return true;
  }

  Fd fd_;
  uint64_t size_ = 0, pos_ = 0;
  std::string buffer_;
};

struct Tally {
  size_t upserts = 0, removals = 0, rejected = 0;
};

void ApplyChunk(IndicatorSet& set, const quell::v1::IndicatorDelta& d, Tally& t) {
  for (const std::string& id : d.removed_ids()) {
    if (set.Remove(id)) ++t.removals;
  }
  for (const auto& ind : d.upserts()) {
    if (Status s = set.Upsert(ind); !s.ok()) {
      ++t.rejected;
      Log()->warn("indicator {} rejected: {}", ind.id(), s.message());
      continue;
    }
    ++t.upserts;
  }
}

}  // namespace

struct IndicatorStore::Partial {
  uint64_t from = 0, to = 0;
  bool full = false;
  std::vector<quell::v1::IndicatorDelta> chunks;  // a delta's chunks (not for full)
  std::unique_ptr<IndicatorSet> staged;            // a full snapshot's new set
  Fd tmp;                                          // snapshot.tmp being written
  uint64_t tmp_bytes = 0;
  Tally tally;
};

IndicatorStore::IndicatorStore(IndicatorStoreOptions options)
    : options_(std::move(options)),
      clock_(options_.clock ? *options_.clock : SystemClock::Instance()),
      set_(clock_) {}

IndicatorStore::~IndicatorStore() = default;

Result<std::unique_ptr<IndicatorStore>> IndicatorStore::Open(IndicatorStoreOptions options) {
  QUELL_RETURN_IF_ERROR(MakeDirs(options.dir, 0700).WithContext("indicators dir"));
  std::unique_ptr<IndicatorStore> store(new IndicatorStore(std::move(options)));
  QUELL_RETURN_IF_ERROR(store->Restore());
  return store;
}

Status IndicatorStore::Restore() {
  const std::string snap_path = options_.dir + "/snapshot", log_path = options_.dir + "/log";
  (void)RemoveFile(options_.dir + "/snapshot.tmp");  // an interrupted full transfer
  Result<FrameReader> snap = FrameReader::Open(snap_path);
  if (snap.ok()) {
    FrameReader& reader = *snap;
    Tally t;
    bool done = false;
    while (auto d = reader.Next()) {
      ApplyChunk(set_, *d, t);
      if (!d->more()) {
        version_ = d->to_version();
        done = true;
        break;
      }
    }
    if (!done) {
      return Internal("indicator snapshot " + snap_path + " is damaged (" +
                      std::to_string(reader.offset()) + " of " + std::to_string(reader.size()) +
                      " bytes readable)");
    }
    snapshot_bytes_ = reader.size();
  } else if (snap.status().code() != StatusCode::kNotFound) {
    return snap.status().WithContext("indicator snapshot");
  }

  Result<FrameReader> log = FrameReader::Open(log_path);
  if (!log.ok() && log.status().code() != StatusCode::kNotFound) {
    return log.status().WithContext("indicator log");
  }
  size_t replayed = 0;
  bool reuse_log = false;
  if (log.ok()) {
    FrameReader& reader = *log;
    auto marker = reader.Next();
    if (marker && marker->from_version() == version_ && marker->to_version() == version_) {
      reuse_log = true;
      std::vector<quell::v1::IndicatorDelta> group;
      size_t good_end = reader.offset();
      while (auto d = reader.Next()) {
        group.push_back(std::move(*d));
        if (group.back().more()) continue;
        if (group.front().from_version() == version_) {
          Tally t;
          for (const auto& c : group) ApplyChunk(set_, c, t);
          version_ = group.back().to_version();
          ++replayed;
        }
        group.clear();
        good_end = reader.offset();
      }
      log_bytes_ = good_end;
      if (good_end != reader.size()) {
        // A torn tail (crash while appending): cut it, so later appends follow whole frames.
        Log()->warn("indicator log: dropping {} bytes of an incomplete delta",
                    reader.size() - good_end);
        if (::truncate(log_path.c_str(), static_cast<off_t>(good_end)) != 0) {
          return ErrnoStatus("truncate " + log_path);
        }
      }
    }
  }
  if (!reuse_log) QUELL_RETURN_IF_ERROR(StartLog(version_));
  const size_t purged = set_.Purge();
  Log()->info("indicators restored: version {} ({} indicators, {} deltas replayed, {} expired)",
              version_, set_.size(), replayed, purged);
  return Status::Ok();
}

Status IndicatorStore::StartLog(uint64_t base_version) {
  quell::v1::IndicatorDelta marker;
  marker.set_from_version(base_version);
  marker.set_to_version(base_version);
  const std::string frame = Frame(marker);
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(options_.dir + "/log", frame, 0600).WithContext("indicator log"));
  log_bytes_ = frame.size();
  return Status::Ok();
}

Status IndicatorStore::AppendLog(const std::vector<quell::v1::IndicatorDelta>& chunks) {
  std::string data;
  for (const auto& c : chunks) data += Frame(c);
  const std::string path = options_.dir + "/log";
  Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus("open " + path);
  if (Status s = WriteAll(fd.get(), data, path); !s.ok()) {
    // Nothing half-written may stay: the next append would follow a torn frame.
    if (::ftruncate(fd.get(), static_cast<off_t>(log_bytes_)) != 0) {
      Log()->error("cannot cut a failed append from {}", path);
    }
    return s;
  }
  if (::fdatasync(fd.get()) != 0) return ErrnoStatus("fdatasync " + path);
  log_bytes_ += data.size();
  return Status::Ok();
}

Status IndicatorStore::WriteSnapshotFromMemory() {
  // REQUIRES: called on the applying thread (no writer races with us; readers are fine).
  const std::string tmp = options_.dir + "/snapshot.tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return ErrnoStatus("open " + tmp);
  quell::v1::IndicatorDelta chunk;
  uint64_t bytes = 0;
  Status status;
  auto flush = [&](bool last) {
    chunk.set_from_version(0);
    chunk.set_to_version(version_);
    chunk.set_full(true);
    chunk.set_more(!last);
    std::string f = Frame(chunk);
    bytes += f.size();
    if (status.ok()) status = WriteAll(fd.get(), f, tmp);
    chunk.Clear();
  };
  {
    std::shared_lock lock(mutex_);
    set_.ForEach([&](const IndicatorMatch& m) {
      *chunk.add_upserts() = m.ToProto();
      if (static_cast<size_t>(chunk.upserts_size()) >= options_.snapshot_chunk) flush(false);
    });
  }
  flush(true);
  QUELL_RETURN_IF_ERROR(status);
  if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync " + tmp);
  fd.Reset();
  if (::rename(tmp.c_str(), (options_.dir + "/snapshot").c_str()) != 0) return ErrnoStatus("rename " + tmp);
  QUELL_RETURN_IF_ERROR(SyncDir(options_.dir));
  snapshot_bytes_ = bytes;
  return StartLog(version_);
}

void IndicatorStore::AbortPartial() {
  if (!partial_) return;
  Log()->info("dropping a half-received indicator transfer {} -> {}", partial_->from, partial_->to);
  partial_.reset();
  (void)RemoveFile(options_.dir + "/snapshot.tmp");
}

Result<IndicatorStore::Outcome> IndicatorStore::Apply(const quell::v1::IndicatorDelta& d) {
  Outcome out;
  const uint64_t current = version();
  out.version = current;
  if (partial_ && (partial_->from != d.from_version() || partial_->to != d.to_version() ||
                   partial_->full != d.full())) {
    AbortPartial();  // a new transfer replaces an interrupted one
  }
  if (!partial_) {
    if (!d.full() && d.from_version() != current) {
      Log()->warn("indicator delta {} -> {} does not follow version {}; ignored",
                  d.from_version(), d.to_version(), current);
      out.out_of_sync = true;
      return out;
    }
    partial_ = std::make_unique<Partial>();
    partial_->from = d.from_version();
    partial_->to = d.to_version();
    partial_->full = d.full();
    if (d.full()) {
      partial_->staged = std::make_unique<IndicatorSet>(clock_);
      const std::string tmp = options_.dir + "/snapshot.tmp";
      partial_->tmp = Fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (partial_->tmp.get() < 0) {
        Status s = ErrnoStatus("open " + tmp);
        partial_.reset();
        return s;
      }
    }
  }
  Partial& p = *partial_;

  if (p.full) {
    const std::string frame = Frame(d);
    if (Status s = WriteAll(p.tmp.get(), frame, "snapshot.tmp"); !s.ok()) {
      AbortPartial();
      return s;
    }
    p.tmp_bytes += frame.size();
    ApplyChunk(*p.staged, d, p.tally);
    if (d.more()) return out;
    if (::fsync(p.tmp.get()) != 0) {
      Status s = ErrnoStatus("fsync snapshot.tmp");
      AbortPartial();
      return s;
    }
    p.tmp.Reset();
    const std::string tmp = options_.dir + "/snapshot.tmp";
    if (::rename(tmp.c_str(), (options_.dir + "/snapshot").c_str()) != 0) {
      Status s = ErrnoStatus("rename " + tmp);
      AbortPartial();
      return s;
    }
    // From here the new snapshot is the state on disk; the old log no longer applies (its
    // marker names the old version, so restore ignores it even before StartLog).
    Status synced = SyncDir(options_.dir);
    snapshot_bytes_ = p.tmp_bytes;
    {
      std::unique_lock lock(mutex_);
      set_ = std::move(*p.staged);
      version_ = d.to_version();
    }
    Status logged = StartLog(d.to_version());
    out = Outcome{.complete = true, .version = d.to_version(), .upserts = p.tally.upserts,
                  .removals = p.tally.removals, .rejected = p.tally.rejected};
    partial_.reset();
    // Building the new set (its arrays grow by doubling) and dropping the old one leave many
    // MiB of freed heap behind; hand it back so the agent stays as small as the set it holds.
    ::malloc_trim(0);
    Notify();
    QUELL_RETURN_IF_ERROR(synced);
    QUELL_RETURN_IF_ERROR(logged);
    return out;
  }

  p.chunks.push_back(d);
  if (d.more()) return out;
  std::vector<quell::v1::IndicatorDelta> chunks = std::move(p.chunks);
  partial_.reset();
  // Durable first: an applied-but-unlogged delta would be acknowledged and then lost.
  QUELL_RETURN_IF_ERROR(AppendLog(chunks).WithContext("persisting indicator delta"));
  Tally t;
  {
    std::unique_lock lock(mutex_);
    for (const auto& c : chunks) ApplyChunk(set_, c, t);
    version_ = d.to_version();
  }
  out = Outcome{.complete = true, .version = d.to_version(), .upserts = t.upserts,
                .removals = t.removals, .rejected = t.rejected};
  if (log_bytes_ > options_.compact_log_bytes && log_bytes_ > snapshot_bytes_) {
    if (Status s = WriteSnapshotFromMemory(); !s.ok()) {
      Log()->warn("cannot fold the indicator log into a snapshot: {}", s.ToString());
    }
  }
  Notify();
  return out;
}

size_t IndicatorStore::Purge() {
  size_t n;
  {
    std::unique_lock lock(mutex_);
    n = set_.Purge();
  }
  if (n > 0) Notify();
  return n;
}

void IndicatorStore::Notify() {
  for (const auto& fn : listeners_) fn();
}

uint64_t IndicatorStore::version() const {
  std::shared_lock lock(mutex_);
  return version_;
}

size_t IndicatorStore::size() const {
  std::shared_lock lock(mutex_);
  return set_.size();
}

std::optional<IndicatorMatch> IndicatorStore::MatchFile(std::string_view sha256,
                                                        std::string_view sha1,
                                                        std::string_view md5) const {
  std::shared_lock lock(mutex_);
  return set_.MatchFile(sha256, sha1, md5);
}

std::optional<IndicatorMatch> IndicatorStore::MatchIp(std::string_view address) const {
  std::shared_lock lock(mutex_);
  return set_.MatchIp(address);
}

std::optional<IndicatorMatch> IndicatorStore::MatchDomain(std::string_view name) const {
  std::shared_lock lock(mutex_);
  return set_.MatchDomain(name);
}

std::optional<IndicatorMatch> IndicatorStore::FindById(std::string_view id) const {
  std::shared_lock lock(mutex_);
  return set_.FindById(id);
}

void IndicatorStore::Read(const std::function<void(const IndicatorSet&)>& fn) const {
  std::shared_lock lock(mutex_);
  fn(set_);
}

}  // namespace quell::agent
