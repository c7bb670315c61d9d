// PackageIndex: which files the Debian package manager installed and their recorded MD5
// (dpkg keeps MD5 only), from /var/lib/dpkg/info/<package>[:arch].md5sums.
//
// Paths are indexed by their canonical form (directories resolved with realpath at load), so
// /bin/ls recorded by a package is found as /usr/bin/ls on a merged-/usr system.
// Immutable after Load; safe to read from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace quell::agent {

struct PackageFile {
  std::string md5;      // lowercase hex, as dpkg recorded it
  std::string package;  // e.g. "coreutils"
};

// Parses one .md5sums file: "<32 hex>  <path without leading slash>" per line. Calls `add`
// with "/<path>" and the hex digest for each well-formed line; returns the count.
size_t ParseMd5sums(std::string_view text,
                    const std::function<void(std::string path, std::string md5)>& add);

class PackageIndex {
 public:
  // Reads every *.md5sums in `dpkg_info_dir`. An unreadable file is skipped (logged); a
  // missing directory is NotFound. `canonicalize` false keeps recorded paths as they are
  // (for tests with synthetic paths).
  static Result<PackageIndex> Load(const std::string& dpkg_info_dir, bool canonicalize = true);

  void Add(std::string path, PackageFile file) { files_[std::move(path)] = std::move(file); }

  // The record of `path` (canonical, as readlink of an open fd gives it), if any.
  const PackageFile* Find(const std::string& path) const;
  size_t size() const { return files_.size(); }

 private:
  std::unordered_map<std::string, PackageFile> files_;
};

}  // namespace quell::agent
