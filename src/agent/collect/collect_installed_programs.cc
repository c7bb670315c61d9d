// "Installed programs": the installed dpkg packages (packages.json, packages.txt), a note for
// every other package database found (not read), and what lives outside any package where
// hand-installed tools land: /usr/local/bin and /usr/local/sbin (with sha256) and /opt
// (names and sizes) in local_software.json / .txt.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"

namespace quell::agent::collect {
namespace {

constexpr char kTopic[] = "Installed programs";
constexpr char kDpkgStatus[] = "/var/lib/dpkg/status";
constexpr uint64_t kMaxStatusBytes = 256ull << 20;
constexpr size_t kMaxLocalEntries = 10000;

struct Package {
  std::string name, version, architecture, status;
};

// Installed packages of a dpkg status file: paragraphs whose Status state (its third word) is
// "installed". Continuation lines (leading space) belong to the field before and are ignored.
std::vector<Package> ParseDpkgStatus(std::string_view text) {
  std::vector<Package> out;
  Package p;
  auto flush = [&] {
    const std::vector<std::string_view> status = files::Fields(p.status);
    if (!p.name.empty() && status.size() == 3 && status[2] == "installed") out.push_back(p);
    p = Package{};
  };
  for (std::string_view line : files::Lines(text)) {
    if (files::Trim(line).empty()) {
      flush();
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string value(files::Trim(line.substr(colon + 1)));
    if (key == "Package") p.name = std::move(value);
    else if (key == "Version") p.version = std::move(value);
    else if (key == "Architecture") p.architecture = std::move(value);
    else if (key == "Status") p.status = std::move(value);
  }
  flush();
  return out;
}

void CollectDpkg(const CollectSources& s, PackageStaging& out) {
  const std::string path = files::Under(s, kDpkgStatus);
  if (!files::LStat(path)) return;
  auto text = files::ReadRegularFile(path, kMaxStatusBytes + 1);
  if (!text.ok()) {
    out.RecordFailure(kTopic, kDpkgStatus, text.status().message());
    return;
  }
  if (text->size() > kMaxStatusBytes) {
    out.RecordFailure(kTopic, kDpkgStatus, "larger than 256 MiB; only its start was read");
  }
  const std::vector<Package> packages = ParseDpkgStatus(*text);
  nlohmann::json list = nlohmann::json::array();
  std::string txt = "# name\tversion\tarchitecture\tstatus\n";
  for (const Package& p : packages) {
    list.push_back({{"name", p.name},
                    {"version", p.version},
                    {"architecture", p.architecture},
                    {"status", p.status}});
    txt += p.name + "\t" + p.version + "\t" +
           p.architecture + "\t" + p.status + "\n";
  }
  out.AddJson(kTopic, "packages.json",
              {{"manager", "dpkg"}, {"source", kDpkgStatus}, {"count", packages.size()},
               {"packages", std::move(list)}},
              kDpkgStatus);
  out.AddText(kTopic, "packages.txt", txt, kDpkgStatus);
}

// Package databases this collector does not parse: each one present is a failure, because
// the package list is then incomplete.
void NoteOtherDatabases(const CollectSources& s, PackageStaging& out) {
  static const std::pair<const char*, const char*> kDatabases[] = {
      {"rpm", "/var/lib/rpm"},
      {"rpm", "/usr/lib/sysimage/rpm"},
      {"pacman", "/var/lib/pacman/local"},
      {"apk", "/lib/apk/db/installed"},
      {"snap", "/var/lib/snapd/snaps"},
      {"flatpak", "/var/lib/flatpak"},
  };
  for (const auto& [manager, host] : kDatabases) {
    const std::string path = files::Under(s, host);
    auto st = files::LStat(path);
    if (!st) continue;
    if (S_ISDIR(st->st_mode) && files::DirNames(path).empty()) continue;
    out.RecordFailure(kTopic, host,
                      std::string(manager) + " database present but not read; its packages "
                                             "are missing from packages.json");
  }
}

void CollectLocalSoftware(const CollectSources& s, PackageStaging& out) {
  std::map<uint32_t, std::string> owners = files::UserNames(files::ReadPasswd(s));
  files::TreeListing listing;
  files::TreeOptions hashed;
  hashed.max_depth = 2;
  hashed.max_entries = kMaxLocalEntries;
  files::TreeOptions names_only = hashed;
  names_only.max_depth = 3;
  names_only.hash = false;
  std::vector<std::string> roots;
  for (const char* dir : {"/usr/local/bin", "/usr/local/sbin"}) {
    if (files::WalkTree(s, dir, hashed, owners, out, listing)) roots.emplace_back(dir);
  }
  if (files::WalkTree(s, "/opt", names_only, owners, out, listing)) roots.emplace_back("/opt");
  if (roots.empty()) return;
  for (const auto& [dir, why] : listing.unreadable) out.RecordFailure(kTopic, dir, "not listed: " + why);
  if (listing.truncated) {
    out.RecordFailure(kTopic, "/usr/local, /opt",
                      "more than " + std::to_string(kMaxLocalEntries) + " entries; the rest are not listed");
  }
  out.AddJson(kTopic, "local_software.json",
              {{"roots", roots},
               {"note", "/usr/local/bin and /usr/local/sbin files are hashed (up to 64 MiB); "
                        "/opt is listed to depth 3 without hashes"},
               {"truncated", listing.truncated},
               {"entries", std::move(listing.entries)}});
  out.AddText(kTopic, "local_software.txt",
              "# type mode owner size mtime sha256 executable path\n" + listing.text);
}

}  // namespace

void CollectInstalledPrograms(const CollectSources& sources, PackageStaging& out) {
  CollectDpkg(sources, out);
  if (out.Exhausted()) return;
  NoteOtherDatabases(sources, out);
  CollectLocalSoftware(sources, out);
}

}  // namespace quell::agent::collect
