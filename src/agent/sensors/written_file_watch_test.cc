#include "agent/sensors/written_file_watch.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace quell::agent::sensors {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Replays pushed events; records marks; can fail Open on command.
class FakeWrittenFileSource final : public WrittenFileSource {
 public:
  Status Open() override {
    std::lock_guard lock(mu);
    if (fail_open) return PermissionDenied("fanotify_init: EPERM");
    if (open) return FailedPrecondition("already open");
    open = true;
    ++opens;
    return Status::Ok();
  }
  Status MarkMount(const std::string& mount_point) override {
    std::lock_guard lock(mu);
    if (!open) return FailedPrecondition("not open");
    marks.insert(mount_point);
    return Status::Ok();
  }
  Result<WrittenFileBatch> Wait(milliseconds timeout) override {
    std::unique_lock lock(mu);
    cv.wait_for(lock, timeout, [&] { return !queue.empty() || overflow; });
    WrittenFileBatch batch;
    while (!queue.empty()) {
      batch.files.push_back(std::move(queue.front()));
      queue.pop_front();
    }
    batch.overflow = std::exchange(overflow, false);
    return batch;
  }
  void Close() override {
    std::lock_guard lock(mu);
    open = false;
    marks.clear();
  }
  // A close of `path` by `pid`, as the kernel would report it (a fresh read-only fd).
  void Push(const std::string& path, pid_t pid) {
    std::lock_guard lock(mu);
    queue.push_back(WrittenFileEvent{.fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)),
                                     .pid = pid});
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;
  std::deque<WrittenFileEvent> queue;
  bool overflow = false, open = false, fail_open = false;
  int opens = 0;
  std::set<std::string> marks;
};

class CollectingSink final : public DetectionSink {
 public:
  void Report(Detection d) override {
    std::lock_guard lock(mu);
    detections.push_back(std::move(d));
  }
  std::vector<Detection> Take() {
    std::lock_guard lock(mu);
    return detections;
  }
  std::mutex mu;
  std::vector<Detection> detections;
};

constexpr pid_t kWriter = 424242;  // never the test's own pid

class WrittenFileWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wfw-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "state");
    mountinfo_ = (dir_ / "mountinfo").string();
    std::ofstream(mountinfo_)
        << "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
           "23 22 0:5 / /proc rw shared:2 - proc proc rw\n"
           "24 22 0:30 / /tmp rw shared:3 - tmpfs tmpfs rw\n";
  }
  void TearDown() override {
    watch_.reset();
    fs::remove_all(dir_);
  }

  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    return path;
  }

  void Start(WrittenFileWatchOptions extra = {}) {
    extra.mountinfo_path = mountinfo_;
    extra.clock = &clock_;
    extra.settle = milliseconds(0);
    extra.wait_slice = milliseconds(20);
    extra.skip_dirs = {(dir_ / "state").string()};
    extra.require_private_mount_namespace = false;
    if (!extra.match_file) {
      extra.match_file = [this](const FileToMatch& f) -> std::optional<IndicatorMatch> {
        std::lock_guard lock(mu_);
        ++lookups_;
        if (auto it = indicators_.find(std::string(f.sha256)); it != indicators_.end()) {
          return it->second;
        }
        return std::nullopt;
      };
    }
    extra.remediate = [this](const WrittenFileHit& hit) {
      std::lock_guard lock(mu_);
      remediated_.push_back(hit);
    };
    watch_ = std::make_unique<WrittenFileWatch>(source_, &sink_, std::move(extra));
    ASSERT_TRUE(watch_->SetActive(true).ok());
  }

  void AddIndicator(const std::string& path, IndicatorAction action, bool alert = true) {
    int fd = open(path.c_str(), O_RDONLY);
    auto h = HashFd(fd);
    close(fd);
    ASSERT_TRUE(h.ok());
    std::lock_guard lock(mu_);
    indicators_[h->sha256] = IndicatorMatch{.id = "ind-" + std::to_string(indicators_.size()),
                                            .type = IndicatorType::kFileSha256,
                                            .value = h->sha256,
                                            .action = action,
                                            .severity = "High",
                                            .title = "bad tool",
                                            .generate_alert = alert};
  }

  // Waits until `judged` events were fully handled (hashed, skipped or counted).
  WrittenFileWatch::Stats WaitFor(const std::function<bool(const WrittenFileWatch::Stats&)>& done) {
    for (int i = 0; i < 500; ++i) {
      auto s = watch_->GetStats();
      if (done(s)) return s;
      std::this_thread::sleep_for(milliseconds(5));
    }
    ADD_FAILURE() << "timed out waiting for the watch";
    return watch_->GetStats();
  }

  std::vector<WrittenFileHit> Remediated() {
    std::lock_guard lock(mu_);
    return remediated_;
  }

  fs::path dir_;
  std::string mountinfo_;
  FakeClock clock_;
  FakeWrittenFileSource source_;
  CollectingSink sink_;
  std::mutex mu_;
  std::map<std::string, IndicatorMatch> indicators_;
  std::vector<WrittenFileHit> remediated_;
  int lookups_ = 0;
  std::unique_ptr<WrittenFileWatch> watch_;
};


TEST_F(WrittenFileWatchTest, MarksOnlyGuardedMountsAndClosesWhenInactive) {
  Start();
  EXPECT_TRUE(watch_->active());
  EXPECT_EQ(source_.marks, (std::set<std::string>{"/", "/tmp"}));  // not /proc
  ASSERT_TRUE(watch_->SetActive(false).ok());
  EXPECT_FALSE(source_.open);
  EXPECT_FALSE(watch_->active());
  ASSERT_TRUE(watch_->SetActive(true).ok());
  EXPECT_EQ(source_.opens, 2);
}

TEST_F(WrittenFileWatchTest, BlockAndRemediateMatchIsRemediatedAndReported) {
  const std::string bad = Write("dropper.bin", "payload-" + std::to_string(getpid()));
  const std::string clean = Write("notes.txt", "nothing to see");
  AddIndicator(bad, IndicatorAction::kBlockAndRemediate);
  Start();
  source_.Push(clean, kWriter);
  source_.Push(bad, kWriter);
  auto s = WaitFor([](const auto& s) { return s.hashed == 2; });
  EXPECT_EQ(s.matched, 1u);
  auto hits = Remediated();
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].path, bad);
  EXPECT_EQ(hits[0].pid, kWriter);
  EXPECT_EQ(hits[0].indicator.action, IndicatorAction::kBlockAndRemediate);
  EXPECT_EQ(hits[0].hashes.sha1.size(), 40u);
  auto d = sink_.Take();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].detector_id, "quell.indicators.file");
  EXPECT_EQ(d[0].title, "File written and remediated by indicator: dropper.bin");
  EXPECT_NE(d[0].description.find(bad), std::string::npos);
  EXPECT_EQ(d[0].evidence[0]["fileDetails"]["sha256"], hits[0].hashes.sha256);
  EXPECT_EQ(d[0].severity, "High");
}

TEST_F(WrittenFileWatchTest, BlockAndAuditAreReportedNotRemediatedAllowedIsSilent) {
  const std::string blocked = Write("blocked", "blocked-content");
  const std::string audited = Write("audited", "audited-content");
  const std::string allowed = Write("allowed", "allowed-content");
  const std::string quiet = Write("quiet", "quiet-content");
  AddIndicator(blocked, IndicatorAction::kBlock);
  AddIndicator(audited, IndicatorAction::kAudit);
  AddIndicator(allowed, IndicatorAction::kAllowed);
  AddIndicator(quiet, IndicatorAction::kBlock, /*alert=*/false);
  Start();
  for (const auto& p : {blocked, audited, allowed, quiet}) source_.Push(p, kWriter);
  auto s = WaitFor([](const auto& s) { return s.hashed == 4; });
  EXPECT_EQ(s.matched, 3u);  // Allowed is not a match
  EXPECT_TRUE(Remediated().empty());
  auto d = sink_.Take();
  ASSERT_EQ(d.size(), 2u);
  std::set<std::string> titles{d[0].title, d[1].title};
  EXPECT_EQ(titles, (std::set<std::string>{"Written file matched indicator: blocked",
                                           "Written file matched indicator: audited"}));
}

TEST_F(WrittenFileWatchTest, SkipsOwnWritesStateDirLargeFilesAndUnchangedVersions) {
  const std::string bad = Write("bad", "bad-content");
  const std::string in_state = Write("state/spooled", "bad-content");  // same hash
  const std::string big = Write("big", std::string(4096, 'x'));
  AddIndicator(bad, IndicatorAction::kBlockAndRemediate);
  AddIndicator(big, IndicatorAction::kBlockAndRemediate);
  Start({.max_file_bytes = 1024});
  source_.Push(bad, getpid());  // the agent's own write
  source_.Push(in_state, kWriter);
  source_.Push(big, kWriter);
  auto s = WaitFor([](const auto& s) { return s.own + s.skipped_dir + s.too_large == 3; });
  EXPECT_EQ(s.own, 1u);
  EXPECT_EQ(s.skipped_dir, 1u);
  EXPECT_EQ(s.too_large, 1u);
  EXPECT_EQ(s.hashed, 0u);
  // The same version closed twice is hashed once; a changed version is hashed again.
  source_.Push(bad, kWriter);
  WaitFor([](const auto& s) { return s.hashed == 1; });
  source_.Push(bad, kWriter);
  s = WaitFor([](const auto& s) { return s.unchanged == 1; });
  EXPECT_EQ(s.hashed, 1u);
  std::ofstream(bad, std::ios::app) << "more";
  source_.Push(bad, kWriter);
  s = WaitFor([](const auto& s) { return s.hashed == 2; });
  EXPECT_EQ(Remediated().size(), 1u);  // the changed file no longer matches
  EXPECT_TRUE(sink_.Take().size() == 1u);
}

TEST_F(WrittenFileWatchTest, DeletedAndNonRegularFilesAreSkippedOverflowIsCounted) {
  const std::string gone = Write("gone", "x");
  source_.Push(gone, kWriter);  // fd opened now
  fs::remove(gone);
  Start();
  {
    std::lock_guard lock(source_.mu);
    source_.queue.push_back(WrittenFileEvent{.fd = UniqueFd(open(dir_.c_str(), O_RDONLY)),
                                             .pid = kWriter});
    source_.overflow = true;
    source_.cv.notify_all();
  }
  auto s = WaitFor([](const auto& s) { return s.not_regular == 2 && s.overflows == 1; });
  EXPECT_EQ(s.hashed, 0u);
}

TEST_F(WrittenFileWatchTest, RefusesTheInitialMountNamespaceWhenRequired) {
  WrittenFileWatchOptions o;
  o.mountinfo_path = mountinfo_;
  o.require_private_mount_namespace = true;
  o.in_initial_mount_namespace = [] { return Result<bool>(true); };
  WrittenFileWatch watch(source_, &sink_, o);
  Status s = watch.SetActive(true);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(source_.open);
  EXPECT_FALSE(watch.active());
}

TEST_F(WrittenFileWatchTest, OpenFailureLeavesItInactive) {
  source_.fail_open = true;
  WrittenFileWatchOptions o;
  o.mountinfo_path = mountinfo_;
  WrittenFileWatch watch(source_, &sink_, o);
  EXPECT_FALSE(watch.SetActive(true).ok());
  EXPECT_FALSE(watch.active());
  EXPECT_TRUE(watch.SetActive(false).ok());
}

// ---- WriteDebouncer (pure) ----------------------------------------------------------------

WrittenFileEvent Ev(pid_t pid) { return WrittenFileEvent{.fd = UniqueFd(), .pid = pid}; }

TEST(WriteDebouncerTest, CoalescesClosesOfOneInodeUntilItSettles) {
  WriteDebouncer d(/*settle=*/100, /*max_delay=*/1000, /*max_pending=*/8);
  EXPECT_EQ(d.Add({1, 10}, Ev(1), 0), WriteDebouncer::Added::kNew);
  EXPECT_EQ(d.Add({1, 10}, Ev(2), 50), WriteDebouncer::Added::kCoalesced);
  EXPECT_EQ(d.NextDue(), 150);
  EXPECT_TRUE(d.TakeDue(149).empty());
  auto due = d.TakeDue(150);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].pid, 2);  // the latest close wins
  EXPECT_EQ(d.pending(), 0u);
  EXPECT_FALSE(d.NextDue().has_value());
}

TEST(WriteDebouncerTest, AFileRewrittenContinuouslyIsStillDueAfterMaxDelay) {
  WriteDebouncer d(100, 1000, 8);
  d.Add({1, 10}, Ev(1), 0);
  for (UnixMillis t = 50; t < 1000; t += 50) {
    d.Add({1, 10}, Ev(1), t);
    EXPECT_TRUE(d.TakeDue(t).empty()) << t;
  }
  EXPECT_EQ(d.NextDue(), 1000);
  EXPECT_EQ(d.TakeDue(1000).size(), 1u);
}

TEST(WriteDebouncerTest, DistinctInodesAreDueOldestFirstAndTheBoundDrops) {
  WriteDebouncer d(0, 0, 2);
  EXPECT_EQ(d.Add({1, 20}, Ev(20), 5), WriteDebouncer::Added::kNew);
  EXPECT_EQ(d.Add({1, 10}, Ev(10), 7), WriteDebouncer::Added::kNew);
  EXPECT_EQ(d.Add({2, 10}, Ev(30), 8), WriteDebouncer::Added::kDropped);
  auto due = d.TakeDue(8);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].pid, 20);
  EXPECT_EQ(due[1].pid, 10);
}

}  // namespace
}  // namespace quell::agent::sensors
