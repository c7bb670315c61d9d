#include "agent/restriction/package_index.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>

#include <memory>

#include "common/files.h"
#include "common/logging.h"

namespace quell::agent {
namespace {

bool IsHex32(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

size_t ParseMd5sums(std::string_view text,
                    const std::function<void(std::string path, std::string md5)>& add) {
  size_t count = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() < 35 || !IsHex32(line.substr(0, 32)) || line[32] != ' ') continue;
    std::string_view path = line.substr(33);
    while (!path.empty() && path.front() == ' ') path.remove_prefix(1);
    if (path.empty()) continue;
    std::string full = path.front() == '/' ? std::string(path) : "/" + std::string(path);
    add(std::move(full), Lower(std::string(line.substr(0, 32))));
    ++count;
  }
  return count;
}

Result<PackageIndex> PackageIndex::Load(const std::string& dir, bool canonicalize) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
  if (!d) return ErrnoStatus("opendir " + dir);
  PackageIndex index;
  std::unordered_map<std::string, std::string> canonical_dirs;
  auto canonical = [&](const std::string& path) -> std::string {
    if (!canonicalize) return path;
    const size_t slash = path.rfind('/');
    const std::string parent = slash == 0 ? "/" : path.substr(0, slash);
    auto it = canonical_dirs.find(parent);
    if (it == canonical_dirs.end()) {
      char buf[PATH_MAX];
      std::string real = realpath(parent.c_str(), buf) ? std::string(buf) : parent;
      it = canonical_dirs.emplace(parent, std::move(real)).first;
    }
    return (it->second == "/" ? "" : it->second) + path.substr(slash);
  };
  while (dirent* e = readdir(d.get())) {
    std::string name = e->d_name;
    constexpr std::string_view kSuffix = ".md5sums";
    if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) continue;
    std::string package = name.substr(0, name.size() - kSuffix.size());
    if (size_t colon = package.find(':'); colon != std::string::npos) package.resize(colon);
    Result<std::string> text = ReadFile(dir + "/" + name);
    if (!text.ok()) {
      Logger("agent.restriction")->warn("skipping {}: {}", name, text.status().ToString());
      continue;
    }
    ParseMd5sums(*text, [&](std::string path, std::string md5) {
      index.files_[canonical(path)] = PackageFile{std::move(md5), package};
    });
  }
  return index;
}

const PackageFile* PackageIndex::Find(const std::string& path) const {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace quell::agent
