// Remembers files found clean so an unchanged file is not scanned again with the same
// signatures. A file counts as unchanged when (dev, ino, size, mtime, ctime) all match;
// ctime catches content rewritten with a restored mtime. Thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "agent/scan/scan_targets.h"
#include "common/status.h"

namespace quell::agent::scan {

class ScanCache {
 public:
  bool IsKnownClean(const FileItem& file, const std::string& signature_version) const;
  void MarkClean(const FileItem& file, const std::string& signature_version);
  size_t size() const;

  // Persistence: one line per entry. A missing file loads as empty; a damaged one is
  // ignored (the cache is only an optimisation).
  void LoadFrom(const std::string& path);
  Status SaveTo(const std::string& path) const;

 private:
  struct Entry {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    std::string signature_version;
  };
  mutable std::mutex mu_;
  std::map<std::pair<dev_t, ino_t>, Entry> entries_;
};

}  // namespace quell::agent::scan
