// "System Information": what the host is (OS release, kernel, hostname), how long it has run,
// what is mounted, which kernel modules are loaded, and its CPU and memory.
#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"
#include "agent/collect/process_table.h"
#include "common/clock.h"
#include "common/files.h"

namespace quell::agent::collect {
namespace {

constexpr std::string_view kTopic = "System Information";

bool IsRegular(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\n");
  size_t e = s.find_last_not_of(" \t\n");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

std::string Duration(uint64_t seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%" PRIu64 " days, %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64,
                seconds / 86400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
  return buf;
}

// "up 3 days, 04:05:06 (277506.12 s)" plus the boot time, from /proc/uptime and /proc/stat.
void AddUptime(const CollectSources& sources, PackageStaging& out) {
  const std::string path = sources.proc_root + "/uptime";
  auto text = ReadFile(path);
  double up = 0, idle = 0;
  if (!text.ok() || std::sscanf(text->c_str(), "%lf %lf", &up, &idle) < 1 || up < 0) {
    out.RecordFailure(kTopic, path, text.ok() ? "malformed" : text.status().message());
    return;
  }
  std::string report = "up " + Duration(static_cast<uint64_t>(up)) + " (" + Trim(*text) + ")\n";
  if (auto stat = ReadFile(sources.proc_root + "/stat"); stat.ok()) {
    if (auto boot = ParseBootTime(*stat)) report += "booted " + FormatIso8601(*boot * 1000) + "\n";
  }
  out.AddText(kTopic, "uptime.txt", report, path);
}

// The running hostname (kernel) next to the configured one: a difference is worth a look.
void AddHostname(const CollectSources& sources, PackageStaging& out) {
  std::string report;
  const std::string running = sources.proc_root + "/sys/kernel/hostname";
  const std::string configured = files::Under(sources, "/etc/hostname");
  auto r = ReadFile(running);
  auto c = ReadFile(configured);
  if (!r.ok() && !c.ok()) {
    out.RecordFailure(kTopic, running, r.status().message());
    return;
  }
  report += "running: " + (r.ok() ? Trim(*r) : "(unreadable: " + r.status().message() + ")") + "\n";
  report += "configured (/etc/hostname): " +
            (c.ok() ? Trim(*c) : "(unreadable: " + c.status().message() + ")") + "\n";
  out.AddText(kTopic, "hostname.txt", report, running);
}

// The CPU model(s) and count rather than a stanza per logical CPU.
void AddCpuSummary(const CollectSources& sources, PackageStaging& out) {
  const std::string path = sources.proc_root + "/cpuinfo";
  auto text = ReadFile(path);
  if (!text.ok()) {
    out.RecordFailure(kTopic, path, text.status().message());
    return;
  }
  int processors = 0;
  std::map<std::string, int> models;
  std::string flags;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find('\n', pos);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + pos, end - pos);
    pos = end + 1;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string key = Trim(line.substr(0, colon)), value = Trim(line.substr(colon + 1));
    if (key == "processor") ++processors;
    if (key == "model name") ++models[value];
    if (key == "flags" && flags.empty()) flags = value;
  }
  std::string report = "processors: " + std::to_string(processors) + "\n";
  for (const auto& [model, n] : models) report += "model: " + model + " (x" + std::to_string(n) + ")\n";
  if (!flags.empty()) report += "flags: " + flags + "\n";
  out.AddText(kTopic, "cpuinfo_summary.txt", report, path);
}

}  // namespace

void CollectSystemInformation(const CollectSources& sources, PackageStaging& out) {
  if (out.Exhausted()) return;
  // os-release(5): /etc/os-release, else /usr/lib/os-release (it is often a link to it).
  const std::string etc_os = files::Under(sources, "/etc/os-release");
  out.AddFileCopy(kTopic, "os-release",
                  IsRegular(etc_os) ? etc_os : files::Under(sources, "/usr/lib/os-release"));
  out.AddFileCopy(kTopic, "kernel_version.txt", sources.proc_root + "/version");
  out.AddFileCopy(kTopic, "kernel_cmdline.txt", sources.proc_root + "/cmdline");
  out.AddFileCopy(kTopic, "kernel_tainted.txt", sources.proc_root + "/sys/kernel/tainted");
  AddUptime(sources, out);
  AddHostname(sources, out);
  // The agent's mount namespace; /proc/mounts is a link to self/mounts (links are not copied).
  const std::string mountinfo = sources.proc_root + "/self/mountinfo";
  out.AddFileCopy(kTopic, IsRegular(mountinfo) ? "mountinfo.txt" : "mounts.txt",
                  IsRegular(mountinfo) ? mountinfo : sources.proc_root + "/self/mounts");
  out.AddFileCopy(kTopic, "modules.txt", sources.proc_root + "/modules");
  AddCpuSummary(sources, out);
  out.AddFileCopy(kTopic, "meminfo.txt", sources.proc_root + "/meminfo");
  if (!sources.run_commands || out.Exhausted()) return;
  out.AddCommandOutput(kTopic, "uname.txt", {"uname", "-a"});
  if (out.Exhausted()) return;
  out.AddCommandOutput(kTopic, "lsmod.txt", {"lsmod"});
}

}  // namespace quell::agent::collect
