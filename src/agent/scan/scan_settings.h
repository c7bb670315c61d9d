// The `scan:` section of the agent configuration (agent_config.h embeds it). Defaults are the
// production ones; every field is documented in packaging/agent.example.yaml and
// docs/operations.md ("Antivirus scan").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quell::agent::scan {

struct ScanSettings {
  // libclamav database directories, loaded in order. Missing directories are skipped. The
  // config loader fills in {"/var/lib/clamav", "<state_dir>/signatures"} when unset.
  std::vector<std::string> clamav_database_dirs;
  // Directories whose *.yar / *.yara files are compiled (not recursive).
  std::vector<std::string> yara_rule_dirs = {"/etc/quell/yara"};
  uint32_t threads = 0;              // scan threads; 0 = one per online CPU (max 32)
  uint32_t cpu_limit_percent = 50;   // of the whole machine (all cores), 1..100
  uint64_t max_file_bytes = 100ull << 20;     // larger files are skipped (counted)
  uint64_t archive_max_bytes = 400ull << 20;  // bytes extracted from one archive at most
  uint32_t archive_max_recursion = 17;        // nesting depth of archives followed
  // Roots of a Full scan; empty = every local filesystem in /proc/self/mountinfo.
  std::vector<std::string> full_scan_roots;
  // Where Quick scan looks for persistence locations, temp dirs and homes ("/" normally; a
  // lab or test directory otherwise). Running processes are always read from /proc.
  std::string quick_scan_root = "/";
  bool quick_scan_processes = true;
  // File remembering clean files (dev, ino, size, mtime, ctime, signature version) between
  // scans and agent restarts; empty = in memory only. The loader sets <state_dir>/scan-cache.
  std::string cache_path;
};

}  // namespace quell::agent::scan
