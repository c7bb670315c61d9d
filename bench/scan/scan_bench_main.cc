// quell-scan-bench: drives the scan library directly on one directory, as the agent's
// RunAntiVirusScan does for a Full scan, and prints one "path: threat FOUND" line per hit
// (clamscan's format, YARA hits as "path: YARA:rule FOUND") plus a summary on stderr.
// Used by bench/scan/run.sh to compare against clamscan, clamdscan and yara on one corpus.
//
//   quell-scan-bench --db DIR [--db DIR] --rules DIR --threads N --cpu-limit PCT
//                    [--cache FILE] [--no-nice] ROOT
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "agent/scan/scanner.h"

using namespace quell::agent::scan;

int main(int argc, char** argv) {
  std::vector<std::string> dbs, rules;
  std::string root, cache_path;
  ScannerOptions options;
  options.cpu_limit_percent = 100;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--db") dbs.push_back(next());
    else if (a == "--rules") rules.push_back(next());
    else if (a == "--threads") options.threads = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--cpu-limit") options.cpu_limit_percent = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--cache") cache_path = next();
    else if (a == "--no-nice") options.lower_priority = false;
    else root = a;
  }
  if (root.empty()) {
    std::fprintf(stderr, "usage: quell-scan-bench --db DIR --rules DIR [--threads N] ROOT\n");
    return 2;
  }
  auto engines = ScanEngines::Load(dbs, rules, ClamLimits{});
  if (!engines.ok()) {
    std::fprintf(stderr, "%s\n", engines.status().ToString().c_str());
    return 1;
  }
  auto files = EnumerateFiles({{root, "", true}}, {}, {}, nullptr);
  if (!files.ok()) {
    std::fprintf(stderr, "%s\n", files.status().ToString().c_str());
    return 1;
  }
  ScanCache cache;
  if (!cache_path.empty()) cache.LoadFrom(cache_path);
  auto summary = RunScan(**engines, *files, options, cache_path.empty() ? nullptr : &cache,
                         nullptr, nullptr, {});
  if (!summary.ok()) {
    std::fprintf(stderr, "%s\n", summary.status().ToString().c_str());
    return 1;
  }
  for (const ScanHit& h : summary->hits) {
    if (h.detector_id == "quell.av.yara") {
      std::printf("%s: YARA:%s FOUND\n", h.path.c_str(), h.threat_name.c_str());
    } else {
      std::printf("%s: %s FOUND\n", h.path.c_str(), h.threat_name.c_str());
    }
  }
  if (!cache_path.empty()) (void)cache.SaveTo(cache_path);
  std::fprintf(stderr,
               "quell-scan-bench: %zu files listed, %llu scanned, %llu cached, %llu too large, "
               "%llu failed, %llu bytes, %zu hits, %lld ms\n",
               files->size(), static_cast<unsigned long long>(summary->files_scanned),
               static_cast<unsigned long long>(summary->files_cached),
               static_cast<unsigned long long>(summary->files_too_large),
               static_cast<unsigned long long>(summary->files_failed),
               static_cast<unsigned long long>(summary->bytes_scanned), summary->hits.size(),
               static_cast<long long>(summary->duration_ms));
  return 0;
}
