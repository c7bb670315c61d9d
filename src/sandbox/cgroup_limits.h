// The cgroups one detonation runs in: memory, pids and CPU limits, the counters that say which
// limit was hit, and removal that leaves no directory behind. Supports the v1 hierarchy
// (/sys/fs/cgroup/{memory,pids,cpu}, also the hybrid layout) and unified v2 (detected with
// statfs CGROUP2_SUPER_MAGIC on the cgroup root). Every group lives under a `quell-sandbox`
// parent: <root>[/<controller>]/quell-sandbox/<name>.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quell::sandbox {

inline constexpr char kCgroupParent[] = "quell-sandbox";

struct CgroupSettings {
  uint64_t memory_bytes = 512ull << 20;  // memory (and memory+swap) limit
  uint32_t max_pids = 128;               // tasks (threads count) in the group
  double cpus = 1.0;                     // CPU quota in cores (period 100 ms)
};

struct CgroupCounters {
  bool memory_limit_hit = false;  // the OOM killer acted in the group
  bool pids_limit_hit = false;    // a fork or clone was refused by pids.max
};

// The value of `key` in a flat keyed file ("key value" lines: memory.events, pids.events,
// memory.oom_control), or nullopt when absent or not a number.
std::optional<uint64_t> FlatKeyedValue(std::string_view text, std::string_view key);

// The counters from the text of the memory file (v1 memory.oom_control, v2 memory.events)
// and pids.events.
CgroupCounters ParseCgroupCounters(std::string_view memory_text, std::string_view pids_text);

// "cpu.max" content for v2 / the v1 cfs quota in microseconds per 100 ms period.
int64_t CpuQuotaMicros(double cpus);

class CgroupLimits {
 public:
  enum class Layout { kV1, kUnified };

  // Creates the groups named `name` with `settings` under `root` (the cgroup file system's
  // mount point). Also removes empty leftovers of supervisors that no longer exist.
  // REQUIRES: root (write access to the cgroup file system).
  static Result<CgroupLimits> Create(const std::string& name, const CgroupSettings& settings,
                                     const std::string& root = "/sys/fs/cgroup");

  CgroupLimits(CgroupLimits&& other) noexcept;
  CgroupLimits& operator=(CgroupLimits&& other) noexcept;
  CgroupLimits(const CgroupLimits&) = delete;
  CgroupLimits& operator=(const CgroupLimits&) = delete;
  ~CgroupLimits();  // Remove(), errors logged

  // Moves `pid` (and so its future descendants) into every group.
  Status AddProcess(pid_t pid) const;
  CgroupCounters ReadCounters() const;
  // SIGKILLs whatever is still in the groups and removes their directories (retrying while
  // dying tasks leave). Idempotent.
  Status Remove();

  Layout layout() const { return layout_; }
  // The group directories, one per controller (one in total for unified v2).
  const std::vector<std::string>& directories() const { return dirs_; }

 private:
  CgroupLimits() = default;
  Layout layout_ = Layout::kV1;
  std::vector<std::string> dirs_;
  std::string memory_dir_, pids_dir_;
};

}  // namespace quell::sandbox
