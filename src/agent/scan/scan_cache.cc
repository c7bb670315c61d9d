#include "agent/scan/scan_cache.h"

#include <fstream>
#include <sstream>

#include "common/files.h"

namespace quell::agent::scan {

bool ScanCache::IsKnownClean(const FileItem& f, const std::string& version) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find({f.dev, f.ino});
  return it != entries_.end() && it->second.size == f.size && it->second.mtime_ns == f.mtime_ns &&
         it->second.ctime_ns == f.ctime_ns && it->second.signature_version == version;
}

void ScanCache::MarkClean(const FileItem& f, const std::string& version) {
  std::lock_guard lock(mu_);
  entries_[{f.dev, f.ino}] = Entry{f.size, f.mtime_ns, f.ctime_ns, version};
}

size_t ScanCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void ScanCache::LoadFrom(const std::string& path) {
  std::ifstream in(path);
  std::map<std::pair<dev_t, ino_t>, Entry> loaded;
  uint64_t dev = 0, ino = 0;
  Entry e;
  while (in >> dev >> ino >> e.size >> e.mtime_ns >> e.ctime_ns >> e.signature_version) {
    loaded[{static_cast<dev_t>(dev), static_cast<ino_t>(ino)}] = e;
  }
  std::lock_guard lock(mu_);
  entries_ = std::move(loaded);
}

Status ScanCache::SaveTo(const std::string& path) const {
  std::ostringstream out;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, e] : entries_) {
      out << key.first << ' ' << key.second << ' ' << e.size << ' ' << e.mtime_ns << ' '
          << e.ctime_ns << ' ' << e.signature_version << '\n';
    }
  }
  return WriteFileAtomic(path, out.str(), 0600);
}

}  // namespace quell::agent::scan
