#include "bench/loadgen/proc_sampler.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "common/files.h"

namespace quell::bench {
namespace {

uint64_t StatusField(const std::string& status, const std::string& name) {
  size_t at = status.find("\n" + name + ":");
  if (at == std::string::npos) return 0;
  return std::strtoull(status.c_str() + at + name.size() + 2, nullptr, 10);
}

}  // namespace

Result<ProcSample> SampleProcess(pid_t pid) {
  ProcSample sample;
  sample.at = std::chrono::steady_clock::now();
  std::string base = "/proc/" + std::to_string(pid);
  Result<std::string> status = ReadFile(base + "/status");
  Result<std::string> stat = ReadFile(base + "/stat");
  if (!status.ok() || !stat.ok()) return NotFound("process " + std::to_string(pid) + " is gone");
  sample.rss_bytes = StatusField(*status, "VmRSS") * 1024;  // reported in kB
  sample.threads = StatusField(*status, "Threads");
  // The command name (field 2) may hold spaces and parentheses; fields resume after the
  // last ')'. utime and stime are fields 14 and 15, i.e. the 12th and 13th after it.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return Internal("unreadable " + base + "/stat");
  std::istringstream fields(stat->substr(close + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;
  uint64_t utime = 0, stime = 0;
  fields >> utime >> stime;
  sample.cpu_ticks = utime + stime;
  return sample;
}

double CpuPercent(const ProcSample& from, const ProcSample& to) {
  double seconds = std::chrono::duration<double>(to.at - from.at).count();
  if (seconds <= 0) return 0;
  double cpu_seconds =
      static_cast<double>(to.cpu_ticks - from.cpu_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return 100.0 * cpu_seconds / seconds;
}

std::string LoadAverage() {
  Result<std::string> text = ReadFile("/proc/loadavg");
  if (!text.ok()) return "?";
  std::istringstream in(*text);
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

Result<uint64_t> RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return Internal(std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  }
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return Internal(std::string("setrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

}  // namespace quell::bench
