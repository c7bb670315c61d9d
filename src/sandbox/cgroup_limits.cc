#include "sandbox/cgroup_limits.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <thread>

#include "common/files.h"
#include "common/logging.h"
#include "common/unique_fd.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace quell::sandbox {
namespace {

constexpr int64_t kCpuPeriodMicros = 100000;

Status WriteText(const std::string& path, std::string_view text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + path);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus("write " + path);
  }
  return Status::Ok();
}

std::string ReadText(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? std::move(r).value() : std::string();
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + path);
  return Status::Ok();
}

std::vector<pid_t> Procs(const std::string& dir) {
  std::vector<pid_t> pids;
  std::string text = ReadText(dir + "/cgroup.procs");
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    pid_t pid = 0;
    auto [next, ec] = std::from_chars(p, end, pid);
    if (ec == std::errc() && pid > 0) pids.push_back(pid);
    p = next;
    while (p < end && (*p < '0' || *p > '9')) ++p;
  }
  return pids;
}

// Removes `run-<pid>-*` groups whose supervisor pid no longer exists (a SIGKILLed supervisor
// cannot clean up after itself). Groups with processes in them are left alone.
void RemoveStaleGroups(const std::string& parent) {
  DIR* d = ::opendir(parent.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (e->d_type != DT_DIR || !name.starts_with("run-")) continue;
    pid_t owner = 0;
    auto [p, ec] = std::from_chars(name.data() + 4, name.data() + name.size(), owner);
    if (ec != std::errc() || owner <= 0 || ::kill(owner, 0) == 0 || errno != ESRCH) continue;
    ::rmdir((parent + "/" + std::string(name)).c_str());
  }
  ::closedir(d);
}

// Makes `parent` (with `set_up_parent`) and the group `dir` below it. The parent is removed
// by the last run that leaves it (so nothing stays on the host), which can happen between
// the two mkdirs of a concurrent run: then it is made again.
Status MakeGroupDir(const std::string& parent, const std::string& dir,
                    const std::function<Status()>& set_up_parent) {
  for (int attempt = 0;; ++attempt) {
    QUELL_RETURN_IF_ERROR(MakeDir(parent));
    QUELL_RETURN_IF_ERROR(set_up_parent());
    RemoveStaleGroups(parent);
    if (::mkdir(dir.c_str(), 0755) == 0) return Status::Ok();
    if (errno != ENOENT || attempt == 3) return ErrnoStatus("mkdir " + dir);
  }
}

}  // namespace

std::optional<uint64_t> FlatKeyedValue(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ' ') {
      std::string_view value = line.substr(key.size() + 1);
      uint64_t v = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc()) return std::nullopt;
      return v;
    }
  }
  return std::nullopt;
}

CgroupCounters ParseCgroupCounters(std::string_view memory_text, std::string_view pids_text) {
  CgroupCounters c;
  // v1 memory.oom_control and v2 memory.events both have oom_kill; v1's under_oom means an
  // OOM is in progress right now.
  c.memory_limit_hit = FlatKeyedValue(memory_text, "oom_kill").value_or(0) > 0 ||
                       FlatKeyedValue(memory_text, "under_oom").value_or(0) > 0;
  c.pids_limit_hit = FlatKeyedValue(pids_text, "max").value_or(0) > 0;
  return c;
}

int64_t CpuQuotaMicros(double cpus) {
  if (!(cpus > 0)) cpus = 1.0;
  return std::max<int64_t>(1000, static_cast<int64_t>(std::llround(cpus * kCpuPeriodMicros)));
}

Result<CgroupLimits> CgroupLimits::Create(const std::string& name, const CgroupSettings& s,
                                          const std::string& root) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return InvalidArgument("bad cgroup name '" + name + "'");
  }
  struct statfs fs {};
  if (::statfs(root.c_str(), &fs) != 0) return ErrnoStatus("statfs " + root);
  CgroupLimits g;
  g.layout_ = fs.f_type == CGROUP2_SUPER_MAGIC ? Layout::kUnified : Layout::kV1;
  const std::string mem = std::to_string(s.memory_bytes);
  const std::string pids = std::to_string(s.max_pids);
  const int64_t quota = CpuQuotaMicros(s.cpus);

  if (g.layout_ == Layout::kUnified) {
    const std::string parent = root + "/" + kCgroupParent;
    // Controllers must be enabled top-down; the root may already have them (systemd does).
    std::string enabled = ReadText(root + "/cgroup.subtree_control");
    for (const char* c : {"memory", "pids", "cpu"}) {
      if (enabled.find(c) == std::string::npos) {
        QUELL_RETURN_IF_ERROR(WriteText(root + "/cgroup.subtree_control", std::string("+") + c));
      }
    }
    const std::string dir = parent + "/" + name;
    QUELL_RETURN_IF_ERROR(MakeGroupDir(parent, dir, [&] {
      return WriteText(parent + "/cgroup.subtree_control", "+memory +pids +cpu");
    }));
    g.dirs_.push_back(dir);
    g.memory_dir_ = g.pids_dir_ = dir;
    QUELL_RETURN_IF_ERROR(WriteText(dir + "/memory.max", mem));
    (void)WriteText(dir + "/memory.swap.max", "0");  // absent without swap accounting
    QUELL_RETURN_IF_ERROR(WriteText(dir + "/pids.max", pids));
    QUELL_RETURN_IF_ERROR(WriteText(
        dir + "/cpu.max", std::to_string(quota) + " " + std::to_string(kCpuPeriodMicros)));
    return g;
  }

  for (const char* controller : {"memory", "pids", "cpu"}) {
    const std::string parent = root + "/" + controller + "/" + kCgroupParent;
    const std::string dir = parent + "/" + name;
    QUELL_RETURN_IF_ERROR(MakeGroupDir(parent, dir, [] { return Status::Ok(); }));
    g.dirs_.push_back(dir);
    if (std::string_view(controller) == "memory") {
      g.memory_dir_ = dir;
      QUELL_RETURN_IF_ERROR(WriteText(dir + "/memory.limit_in_bytes", mem));
      (void)WriteText(dir + "/memory.memsw.limit_in_bytes", mem);  // only with swap accounting
    } else if (std::string_view(controller) == "pids") {
      g.pids_dir_ = dir;
      QUELL_RETURN_IF_ERROR(WriteText(dir + "/pids.max", pids));
    } else {
      QUELL_RETURN_IF_ERROR(
          WriteText(dir + "/cpu.cfs_period_us", std::to_string(kCpuPeriodMicros)));
      QUELL_RETURN_IF_ERROR(WriteText(dir + "/cpu.cfs_quota_us", std::to_string(quota)));
    }
  }
  return g;
}

CgroupLimits::CgroupLimits(CgroupLimits&& other) noexcept
    : layout_(other.layout_),
      dirs_(std::exchange(other.dirs_, {})),
      memory_dir_(std::move(other.memory_dir_)),
      pids_dir_(std::move(other.pids_dir_)) {}

CgroupLimits& CgroupLimits::operator=(CgroupLimits&& other) noexcept {
  if (this != &other) {
    (void)Remove();
    layout_ = other.layout_;
    dirs_ = std::exchange(other.dirs_, {});
    memory_dir_ = std::move(other.memory_dir_);
    pids_dir_ = std::move(other.pids_dir_);
  }
  return *this;
}

CgroupLimits::~CgroupLimits() {
  Status s = Remove();
  if (!s.ok()) Logger("sandbox.cgroup")->warn("cgroup cleanup: {}", s.ToString());
}

Status CgroupLimits::AddProcess(pid_t pid) const {
  const std::string text = std::to_string(pid);
  for (const std::string& dir : dirs_)
    QUELL_RETURN_IF_ERROR(WriteText(dir + "/cgroup.procs", text));
  return Status::Ok();
}

CgroupCounters CgroupLimits::ReadCounters() const {
  if (dirs_.empty()) return {};
  const char* memory_file = layout_ == Layout::kUnified ? "/memory.events" : "/memory.oom_control";
  return ParseCgroupCounters(ReadText(memory_dir_ + memory_file),
                             ReadText(pids_dir_ + "/pids.events"));
}

Status CgroupLimits::Remove() {
  Status result;
  // Children first would matter for nested groups; these are leaves.
  for (const std::string& dir : dirs_) {
    if (layout_ == Layout::kUnified) (void)WriteText(dir + "/cgroup.kill", "1");
    bool removed = false;
    // Dying tasks leave the group asynchronously; 2 s is far more than an exit takes.
    for (int attempt = 0; attempt < 200; ++attempt) {
      for (pid_t pid : Procs(dir)) ::kill(pid, SIGKILL);
      if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) {
        removed = true;
        break;
      }
      if (errno != EBUSY) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!removed && result.ok()) result = ErrnoStatus("rmdir " + dir);
    // The quell-sandbox parent too, unless other runs still have groups in it (EBUSY).
    if (removed) (void)::rmdir(std::filesystem::path(dir).parent_path().c_str());
  }
  dirs_.clear();
  return result;
}

}  // namespace quell::sandbox
