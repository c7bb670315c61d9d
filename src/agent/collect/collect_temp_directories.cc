// "Temp Directories": a listing of /tmp, /var/tmp and /dev/shm (the temp dirs the quick scan
// looks at) — where dropped tools land — in temp_directories.json and .txt: path, type, size,
// mode, owner, mtime, the sha256 of regular files up to 64 MiB and whether a file is executable
// (a +x bit or ELF magic). Symlinks are listed with their target, never followed; the walk
// stops at depth 8 and after 20,000 entries, and says so.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"

namespace quell::agent::collect {
namespace {

constexpr char kTopic[] = "Temp Directories";
constexpr int kMaxDepth = 8;
constexpr size_t kMaxEntries = 20000;
constexpr uint64_t kMaxHashBytes = 64ull << 20;

}  // namespace

void CollectTempDirectories(const CollectSources& sources, PackageStaging& out) {
  const std::map<uint32_t, std::string> owners = files::UserNames(files::ReadPasswd(sources));
  files::TreeOptions options;
  options.max_depth = kMaxDepth;
  options.max_entries = kMaxEntries;
  options.max_hash_bytes = kMaxHashBytes;
  files::TreeListing listing;
  nlohmann::json roots = nlohmann::json::array();
  for (const char* dir : {"/tmp", "/var/tmp", "/dev/shm"}) {
    if (out.Exhausted()) break;
    const std::string path = files::Under(sources, dir);
    auto st = files::LStat(path);
    if (!st) continue;
    nlohmann::json root = {{"path", dir}, {"type", files::TypeName(st->st_mode)},
                           {"mode", files::OctalMode(st->st_mode)}};
    if (S_ISLNK(st->st_mode)) {
      root["target"] = files::ReadLink(path);
      root["listed"] = false;  // not followed
    } else {
      const size_t before = listing.count;
      root["listed"] = files::WalkTree(sources, dir, options, owners, out, listing);
      root["entries"] = listing.count - before;
    }
    roots.push_back(std::move(root));
  }
  if (roots.empty()) return;
  if (listing.truncated) {
    out.RecordFailure(kTopic, "/tmp, /var/tmp, /dev/shm",
                      "more than " + std::to_string(kMaxEntries) + " entries; the rest are not listed");
  }
  for (const auto& [dir, why] : listing.unreadable) out.RecordFailure(kTopic, dir, "not listed: " + why);
  const size_t count = listing.count;
  out.AddJson(kTopic, "temp_directories.json",
              {{"roots", std::move(roots)},
               {"limits", {{"max_depth", kMaxDepth}, {"max_entries", kMaxEntries},
                           {"max_hash_bytes", kMaxHashBytes}}},
               {"truncated", listing.truncated},
               {"count", count},
               {"entries", std::move(listing.entries)}});
  out.AddText(kTopic, "temp_directories.txt",
              "# type mode owner size mtime sha256 executable(x) path\n" + listing.text);
}

}  // namespace quell::agent::collect
