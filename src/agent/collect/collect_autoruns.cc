// "Autoruns": copies of every file that starts something on boot, on a schedule or at login,
// and autoruns.json, one index of them all with the command lines themselves, so a responder
// reads one file. Package-owned unit directories (/usr/lib, /lib) are only listed by name.
// Symlinks are never followed or copied; they are listed with their targets
// (autoruns_symlinks.txt and the index), which is how enabled units and masks show.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"

namespace quell::agent::collect {
namespace {

constexpr char kTopic[] = "Autoruns";
constexpr size_t kMaxDirEntries = 5000;  // per directory; more is recorded as a failure
constexpr int kMaxUnitDepth = 4;         // unit dir -> x.wants / x.service.d -> file

// Which lines of a file the index shows.
enum class Show {
  kActive,  // every non-blank, non-comment line (cron, profile, rc.local, keys, preload)
  kUnit,    // Exec*=, On*= (timers) and Unit= settings
  kDesktop, // Exec= lines of .desktop files
  kUdev,    // rules that RUN or PROGRAM something
  kAtJob,   // the commands of an at job, without at's environment preamble
  kNone,    // cron.{hourly,...} scripts are whole commands: the copy is the content
};

std::vector<std::string> ShownLines(Show show, std::string_view text) {
  std::vector<std::string> out;
  switch (show) {
    case Show::kActive:
      return files::ActiveLines(text);
    case Show::kUnit:
      for (const files::UnitSetting& u : files::ParseUnitFile(text)) {
        if (u.key.starts_with("Exec") || u.key.starts_with("On") || u.key == "Unit") {
          out.push_back(u.key + "=" + u.value);
        }
      }
      return out;
    case Show::kDesktop:
      for (const files::UnitSetting& u : files::ParseUnitFile(text)) {
        if (u.key == "Exec" || u.key == "TryExec" || u.key == "Hidden" ||
            u.key == "X-GNOME-Autostart-enabled") {
          out.push_back(u.key + "=" + u.value);
        }
      }
      return out;
    case Show::kUdev:
      for (const std::string& line : files::ActiveLines(text)) {
        if (line.find("RUN") != std::string::npos || line.find("PROGRAM") != std::string::npos) {
          out.push_back(line);
        }
      }
      return out;
    case Show::kAtJob:
      return files::ParseAtJob(text).commands;
    case Show::kNone:
      return out;
  }
  return out;
}

class Autoruns {
 public:
  Autoruns(const CollectSources& s, PackageStaging& out) : s_(s), out_(out) {}

  void Run() {
    const std::vector<files::PasswdEntry> users = files::ReadPasswd(s_);

    // systemd: copied where admins and attackers write, listed where packages do.
    for (const char* dir : {"/etc/systemd/system", "/run/systemd/system",
                            "/usr/local/lib/systemd/system", "/etc/systemd/user"}) {
      UnitTree(dir, "", 0);
    }
    for (const files::UnitDir& d : files::SystemUnitDirs(s_)) {
      if (d.package_owned) PackageUnits(d.host, 0);
    }

    File("cron", "/etc/crontab", Show::kActive);
    File("cron", "/etc/anacrontab", Show::kActive);
    Dir("cron", "/etc/cron.d", Show::kActive);
    for (const char* d : {"/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly"}) {
      Dir("cron", d, Show::kNone);
    }
    Dir("cron", "/var/spool/cron/crontabs", Show::kActive, /*owner_is_name=*/true);
    Dir("cron", "/var/spool/cron", Show::kActive, /*owner_is_name=*/true);  // RHEL layout
    Dir("at", "/var/spool/cron/atjobs", Show::kAtJob);
    Dir("at", "/var/spool/at", Show::kAtJob);

    File("rc.local", "/etc/rc.local", Show::kActive);
    File("rc.local", "/etc/rc.d/rc.local", Show::kActive);
    File("profile", "/etc/profile", Show::kActive);
    Dir("profile", "/etc/profile.d", Show::kActive);
    File("profile", "/etc/bash.bashrc", Show::kActive);
    File("profile", "/etc/environment", Show::kActive);
    Dir("motd", "/etc/update-motd.d", Show::kNone);
    File("ld.so.preload", "/etc/ld.so.preload", Show::kActive);
    Dir("udev", "/etc/udev/rules.d", Show::kUdev);
    Dir("udev", "/run/udev/rules.d", Show::kUdev);
    Dir("xdg-autostart", "/etc/xdg/autostart", Show::kDesktop);

    for (const std::string& home : files::UserHomes(s_, users)) {
      if (out_.Exhausted()) break;
      for (const char* f : {".bashrc", ".bash_profile", ".profile", ".bash_login", ".bash_logout", ".zshrc"}) {
        File("profile", files::InHome(home, f), Show::kActive);
      }
      // Only authorized_keys: nothing else in ~/.ssh is ever opened here.
      File("authorized_keys", files::InHome(home, ".ssh/authorized_keys"), Show::kActive);
      File("authorized_keys", files::InHome(home, ".ssh/authorized_keys2"), Show::kActive);
      Dir("xdg-autostart", files::InHome(home, ".config/autostart"), Show::kDesktop);
      UnitTree(files::InHome(home, ".config/systemd/user"), home, 0);
    }

    nlohmann::json index = {{"entries", std::move(entries_)},
                            {"note", "copies are under this folder at their host paths; symlinks "
                                     "and package-owned units are listed, not copied"}};
    out_.AddJson(kTopic, "autoruns.json", index);
    if (!symlinks_.empty()) out_.AddText(kTopic, "autoruns_symlinks.txt", symlinks_);
    if (!package_units_.empty()) out_.AddText(kTopic, "systemd_package_units.txt", package_units_);
  }

 private:
  nlohmann::json& Entry(const std::string& kind, const std::string& host) {
    entries_.push_back({{"kind", kind}, {"location", host}});
    return entries_.back();
  }

  void Symlink(const std::string& kind, const std::string& host) {
    const std::string target = files::ReadLink(files::Under(s_, host));
    nlohmann::json& e = Entry(kind, host);
    e["type"] = "symlink";
    e["target"] = target;
    e["copied"] = nullptr;
    symlinks_ += host + " -> " + target + "\n";
  }

  // One host file: copied and indexed when it is a regular file, listed when a symlink.
  void File(const std::string& kind, const std::string& host, Show show, const std::string& user = "") {
    if (out_.Exhausted()) return;
    auto st = files::LStat(files::Under(s_, host));
    if (!st) return;
    if (S_ISLNK(st->st_mode)) {
      Symlink(kind, host);
      return;
    }
    if (!S_ISREG(st->st_mode)) return;
    std::optional<std::string> text = files::CopyHostFile(s_, out_, kTopic, host);
    nlohmann::json& e = Entry(kind, host);
    e["type"] = "file";
    e["mode"] = files::OctalMode(st->st_mode);
    e["uid"] = st->st_uid;
    e["mtime"] = files::MtimeIso(*st);
    if (!user.empty()) e["user"] = user;
    e["copied"] = text ? nlohmann::json(files::CopyName(host)) : nlohmann::json(nullptr);
    if (text && show != Show::kNone) e["lines"] = ShownLines(show, *text);
  }

  // The top-level entries of a directory (subdirectories are not entered).
  void Dir(const std::string& kind, const std::string& host_dir, Show show, bool owner_is_name = false) {
    const std::vector<std::string> names = files::DirNames(files::Under(s_, host_dir));
    size_t n = 0;
    for (const std::string& name : names) {
      if (out_.Exhausted()) return;
      if (++n > kMaxDirEntries) {
        out_.RecordFailure(kTopic, host_dir, "more than " + std::to_string(kMaxDirEntries) +
                                                 " entries; the rest were not collected");
        return;
      }
      const std::string host = host_dir + "/" + name;
      if (files::IsDirNoFollow(files::Under(s_, host))) continue;
      File(kind, host, show, owner_is_name ? name : "");
    }
  }

  // A unit directory, recursively: unit files and drop-ins copied, enable links listed.
  void UnitTree(const std::string& host_dir, const std::string& home, int depth) {
    if (depth > kMaxUnitDepth) return;
    size_t n = 0;
    for (const std::string& name : files::DirNames(files::Under(s_, host_dir))) {
      if (out_.Exhausted()) return;
      if (++n > kMaxDirEntries) {
        out_.RecordFailure(kTopic, host_dir, "more than " + std::to_string(kMaxDirEntries) +
                                                 " entries; the rest were not collected");
        return;
      }
      const std::string host = host_dir + "/" + name;
      auto st = files::LStat(files::Under(s_, host));
      if (!st) continue;
      if (S_ISDIR(st->st_mode)) {
        UnitTree(host, home, depth + 1);
      } else {
        File("systemd", host, Show::kUnit, home);
      }
    }
  }

  void PackageUnits(const std::string& host_dir, int depth) {
    if (depth > 1) return;
    size_t n = 0;
    for (const std::string& name : files::DirNames(files::Under(s_, host_dir))) {
      if (++n > kMaxDirEntries) break;
      const std::string host = host_dir + "/" + name;
      auto st = files::LStat(files::Under(s_, host));
      if (!st) continue;
      if (S_ISDIR(st->st_mode)) {
        PackageUnits(host, depth + 1);
        continue;
      }
      nlohmann::json& e = Entry("systemd", host);
      e["type"] = files::TypeName(st->st_mode);
      e["package_owned"] = true;
      e["copied"] = nullptr;
      std::string line = host;
      if (S_ISLNK(st->st_mode)) {
        const std::string target = files::ReadLink(files::Under(s_, host));
        e["target"] = target;
        line += " -> " + target;
      }
      package_units_ += line + "\n";
    }
  }

  const CollectSources& s_;
  PackageStaging& out_;
  nlohmann::json entries_ = nlohmann::json::array();
  std::string symlinks_;
  std::string package_units_;
};

}  // namespace

void CollectAutoruns(const CollectSources& sources, PackageStaging& out) {
  Autoruns(sources, out).Run();
}

}  // namespace quell::agent::collect
