// What /proc says about a process: resident memory and CPU time consumed, for the server's
// RSS and CPU% while a simulated fleet idles or works.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace quell::bench {

struct ProcSample {
  std::chrono::steady_clock::time_point at;
  uint64_t rss_bytes = 0;    // VmRSS from /proc/<pid>/status
  uint64_t cpu_ticks = 0;    // utime + stime from /proc/<pid>/stat, in clock ticks
  uint64_t threads = 0;      // Threads from /proc/<pid>/status
};

// NotFound if the process is gone.
Result<ProcSample> SampleProcess(pid_t pid);

// Average CPU use between two samples of one process, in percent of one core.
double CpuPercent(const ProcSample& from, const ProcSample& to);

// The first three fields of /proc/loadavg, e.g. "1.52 1.87 2.01".
std::string LoadAverage();

// Raises RLIMIT_NOFILE of this process to its hard limit; returns the new soft limit.
Result<uint64_t> RaiseFileLimit();

}  // namespace quell::bench
