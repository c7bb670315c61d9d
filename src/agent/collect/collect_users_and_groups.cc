// "Users and Groups": copies of /etc/passwd and /etc/group, users.json (each account with its
// groups and whether it can log in; uid 0 accounts flagged), copies of the sudoers files, and
// each home's ~/.ssh directory as a listing (ssh_dirs.json / .txt): names, sizes, modes and the
// sha256 of public files only. /etc/shadow and /etc/gshadow are never read, so password ages
// are not part of the package; files in ~/.ssh other than public ones are never opened.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <exception>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"
#include "agent/collect/secret_screen.h"
#include "common/hash.h"

namespace quell::agent::collect {
namespace {

constexpr char kTopic[] = "Users and Groups";
constexpr size_t kMaxSshEntries = 1000;  // per ~/.ssh

struct Group {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

std::vector<Group> ParseGroup(std::string_view text) {
  std::vector<Group> out;
  for (std::string_view line : files::Lines(text)) {
    if (line.empty() || line.front() == '#' || line.front() == '+' || line.front() == '-') continue;
    std::vector<std::string_view> f;
    size_t start = 0;
    while (f.size() < 3) {
      size_t c = line.find(':', start);
      if (c == std::string_view::npos) break;
      f.push_back(line.substr(start, c - start));
      start = c + 1;
    }
    if (f.size() != 3 || f[0].empty()) continue;
    Group g;
    g.name = f[0];
    try {
      g.gid = static_cast<uint32_t>(std::stoul(std::string(f[2])));
    } catch (const std::exception&) {
      continue;
    }
    std::string_view members = line.substr(start);
    while (!members.empty()) {
      size_t comma = members.find(',');
      std::string_view m = files::Trim(members.substr(0, comma));
      if (!m.empty()) g.members.emplace_back(m);
      members = comma == std::string_view::npos ? std::string_view() : members.substr(comma + 1);
    }
    out.push_back(std::move(g));
  }
  return out;
}

bool IsLoginShell(const std::string& shell, const std::set<std::string>& etc_shells) {
  if (shell.empty()) return true;  // login(1) uses /bin/sh
  if (shell.ends_with("/nologin") || shell.ends_with("/false") || shell == "/bin/sync" ||
      shell == "/sbin/shutdown" || shell == "/sbin/halt") {
    return false;
  }
  return etc_shells.empty() || etc_shells.count(shell) > 0;
}

// Files in ~/.ssh whose content is public (a public key, the keys allowed in, known hosts,
// client config): only these are opened, to hash them. Everything else (id_rsa, id_ed25519,
// unknown names) could be a private key and is listed by name, size and mode only.
bool IsPublicSshFile(std::string_view name) {
  return name.ends_with(".pub") || name == "authorized_keys" || name == "authorized_keys2" ||
         name == "known_hosts" || name == "known_hosts.old" || name == "config" ||
         name == "environment" || name == "rc";
}

void CollectUsers(const CollectSources& s, PackageStaging& out,
                  const std::vector<files::PasswdEntry>& users) {
  auto group_text = files::ReadRegularFile(files::Under(s, "/etc/group"), 16u << 20);
  const std::vector<Group> groups = group_text.ok() ? ParseGroup(*group_text) : std::vector<Group>{};
  std::set<std::string> etc_shells;
  if (auto shells = files::ReadRegularFile(files::Under(s, "/etc/shells"), 1u << 20); shells.ok()) {
    for (const std::string& l : files::ActiveLines(*shells)) etc_shells.insert(l);
  }
  std::map<uint32_t, std::string> group_names;
  for (const Group& g : groups) group_names.emplace(g.gid, g.name);

  nlohmann::json list = nlohmann::json::array();
  std::string text = "# name uid gid home shell login groups\n";
  for (const files::PasswdEntry& u : users) {
    std::vector<std::string> member_of;
    if (auto it = group_names.find(u.gid); it != group_names.end()) member_of.push_back(it->second);
    for (const Group& g : groups) {
      if (g.gid != u.gid && std::find(g.members.begin(), g.members.end(), u.name) != g.members.end()) {
        member_of.push_back(g.name);
      }
    }
    const bool login = IsLoginShell(u.shell, etc_shells);
    std::string groups_text;
    for (const std::string& g : member_of) groups_text += (groups_text.empty() ? "" : ",") + g;
    list.push_back({{"name", u.name},
                    {"uid", u.uid},
                    {"gid", u.gid},
                    {"gecos", u.gecos},
                    {"home", u.home},
                    {"shell", u.shell},
                    {"login_shell", login},
                    {"uid0", u.uid == 0},
                    {"groups", member_of}});
    text += u.name + " " + std::to_string(u.uid) + " " + std::to_string(u.gid) + " " +
            u.home + " " + u.shell + " " + (login ? "yes" : "no") + " " +
            groups_text + "\n";
  }
  nlohmann::json group_list = nlohmann::json::array();
  for (const Group& g : groups) {
    group_list.push_back({{"name", g.name}, {"gid", g.gid}, {"members", g.members}});
  }
  out.AddJson(kTopic, "users.json",
              {{"users", std::move(list)},
               {"groups", std::move(group_list)},
               {"note", "password ages and lock states are not collected: /etc/shadow is never read"}},
              "/etc/passwd, /etc/group");
  out.AddText(kTopic, "users.txt", text, "/etc/passwd, /etc/group");
}

void CollectSshDirs(const CollectSources& s, PackageStaging& out,
                    const std::vector<files::PasswdEntry>& users) {
  std::map<uint32_t, std::string> owners = files::UserNames(users);
  nlohmann::json dirs = nlohmann::json::array();
  std::string text = "# type mode owner size mtime sha256 path\n";
  for (const std::string& home : files::UserHomes(s, users)) {
    if (out.Exhausted()) return;
    const std::string host_dir = files::InHome(home, ".ssh");
    const std::string dir_path = files::Under(s, host_dir);
    auto dir_st = files::LStat(dir_path);
    if (!dir_st) continue;
    nlohmann::json dir = {{"path", host_dir},
                          {"type", files::TypeName(dir_st->st_mode)},
                          {"mode", files::OctalMode(dir_st->st_mode)},
                          {"uid", dir_st->st_uid}};
    nlohmann::json entries = nlohmann::json::array();
    size_t n = 0;
    for (const std::string& name : files::DirNames(dir_path)) {
      if (++n > kMaxSshEntries) {
        out.RecordFailure(kTopic, host_dir, "more than " + std::to_string(kMaxSshEntries) + " entries");
        break;
      }
      auto st = files::LStat(dir_path + "/" + name);
      if (!st) continue;
      const std::string host = host_dir + "/" + name;
      auto owner = owners.find(st->st_uid);
      nlohmann::json e = {{"name", name},
                          {"type", files::TypeName(st->st_mode)},
                          {"size", static_cast<uint64_t>(st->st_size)},
                          {"mode", files::OctalMode(st->st_mode)},
                          {"uid", st->st_uid},
                          {"owner", owner != owners.end() ? owner->second : std::to_string(st->st_uid)},
                          {"mtime", files::MtimeIso(*st)}};
      std::string sha = "-";
      if (S_ISLNK(st->st_mode)) {
        e["target"] = files::ReadLink(dir_path + "/" + name);
      } else if (S_ISREG(st->st_mode) && IsPublicSshFile(name)) {
        // Read (not just hashed) so that a private key stored under a public name is caught.
        auto content = files::ReadRegularFile(dir_path + "/" + name, 4u << 20);
        if (content.ok() && FindSecret(*content)) {
          e["holds_private_key"] = true;
        } else if (content.ok()) {
          sha = Sha256Hex(*content);
          e["sha256"] = sha;
        }
      } else if (S_ISREG(st->st_mode)) {
        e["not_read"] = "may be a private key";
      }
      text += files::TypeName(st->st_mode) + " " + files::OctalMode(st->st_mode) + " " +
              e["owner"].get<std::string>() + " " + std::to_string(st->st_size) + " " +
              files::MtimeIso(*st) + " " + sha + " " + host + "\n";
      entries.push_back(std::move(e));
    }
    dir["entries"] = std::move(entries);
    dirs.push_back(std::move(dir));
  }
  out.AddJson(kTopic, "ssh_dirs.json",
              {{"ssh_dirs", std::move(dirs)},
               {"note", "listings only; only public files (*.pub, authorized_keys, known_hosts, "
                        "config) are opened, to hash them"}});
  out.AddText(kTopic, "ssh_dirs.txt", text);
}

}  // namespace

void CollectUsersAndGroups(const CollectSources& sources, PackageStaging& out) {
  const std::vector<files::PasswdEntry> users = files::ReadPasswd(sources);
  files::CopyHostFile(sources, out, kTopic, "/etc/passwd");
  files::CopyHostFile(sources, out, kTopic, "/etc/group");
  CollectUsers(sources, out, users);
  if (out.Exhausted()) return;
  files::CopyHostFile(sources, out, kTopic, "/etc/sudoers");
  for (const std::string& name : files::DirNames(files::Under(sources, "/etc/sudoers.d"))) {
    if (out.Exhausted()) return;
    files::CopyHostFile(sources, out, kTopic, "/etc/sudoers.d/" + name);
  }
  CollectSshDirs(sources, out, users);
}

}  // namespace quell::agent::collect
