// "Scheduled tasks": everything that runs on a schedule, in one list (scheduled_tasks.json and
// scheduled_tasks.txt): cron lines from the system and per-user crontabs with their user,
// the run-parts scripts of /etc/cron.{hourly,...}, anacron jobs, at jobs (their commands
// without at's environment preamble) and systemd timers with their schedule and the unit they
// trigger. With run_commands, also `systemctl list-timers --all`.
#include <nlohmann/json.hpp>

#include <ctime>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"
#include "common/clock.h"

namespace quell::agent::collect {
namespace {

constexpr char kTopic[] = "Scheduled tasks";
constexpr uint64_t kMaxFileBytes = 4u << 20;
constexpr size_t kMaxDirEntries = 5000;

std::string JoinLines(const std::vector<std::string>& lines, std::string_view sep) {
  std::string out;
  for (const std::string& l : lines) {
    if (!out.empty()) out += sep;
    out += l;
  }
  return out;
}

// The run time Debian's at encodes in a spool file name ("a0001e01a8b3c4": queue, job number,
// minutes since the epoch in hex); "" when the name is not in that form.
std::string AtRunTime(std::string_view name) {
  if (name.size() != 14) return "";
  try {
    const uint64_t minutes = std::stoull(std::string(name.substr(6)), nullptr, 16);
    return FormatIso8601(static_cast<UnixMillis>(minutes) * 60 * 1000);
  } catch (const std::exception&) {
    return "";
  }
}

class ScheduledTasks {
 public:
  ScheduledTasks(const CollectSources& s, PackageStaging& out)
      : s_(s), out_(out), users_(files::ReadPasswd(s)), names_(files::UserNames(users_)) {}

  void Run() {
    Crontab("/etc/crontab", true, "");
    for (const std::string& name : Names("/etc/cron.d")) Crontab("/etc/cron.d/" + name, true, "");
    for (const char* dir : {"/var/spool/cron/crontabs", "/var/spool/cron"}) {
      for (const std::string& name : Names(dir)) Crontab(std::string(dir) + "/" + name, false, name);
    }
    for (const char* period : {"hourly", "daily", "weekly", "monthly"}) {
      const std::string dir = std::string("/etc/cron.") + period;
      for (const std::string& name : Names(dir)) RunPartsScript(dir + "/" + name, period);
    }
    Anacrontab("/etc/anacrontab");
    for (const char* dir : {"/var/spool/cron/atjobs", "/var/spool/at"}) {
      for (const std::string& name : Names(dir)) AtJobFile(std::string(dir) + "/" + name, name);
    }
    Timers();

    out_.AddJson(kTopic, "scheduled_tasks.json", {{"tasks", std::move(tasks_)}});
    out_.AddText(kTopic, "scheduled_tasks.txt",
                 "# type | schedule | user | command | source\n" + text_);
    if (s_.run_commands) {
      out_.AddCommandOutput(kTopic, "systemctl_list_timers.txt",
                            {"systemctl", "list-timers", "--all", "--no-pager"});
    }
  }

 private:
  // Regular files (and symlinks, reported as such) directly in a host dir.
  std::vector<std::string> Names(const std::string& host_dir) {
    std::vector<std::string> out;
    for (const std::string& name : files::DirNames(files::Under(s_, host_dir))) {
      if (out.size() == kMaxDirEntries) {
        out_.RecordFailure(kTopic, host_dir, "more than " + std::to_string(kMaxDirEntries) +
                                                 " entries; the rest are not listed");
        break;
      }
      if (!files::IsDirNoFollow(files::Under(s_, host_dir + "/" + name))) out.push_back(name);
    }
    return out;
  }

  void Add(nlohmann::json task, const std::string& schedule, const std::string& user,
           const std::string& command, const std::string& source) {
    text_ += task["type"].get<std::string>() + " | " + schedule + " | " + user + " | " + command +
             " | " + source + "\n";
    tasks_.push_back(std::move(task));
  }

  // The text of a host file as the package would hold it (files::ReadAsStaged: a pasted key
  // block's body lines would otherwise become commands), or nullopt (symlinks and unreadable
  // files become a task entry or a failure so that nothing disappears silently).
  std::optional<std::string> Read(const std::string& host, const std::string& type) {
    if (out_.Exhausted()) return std::nullopt;
    const std::string path = files::Under(s_, host);
    auto st = files::LStat(path);
    if (!st) return std::nullopt;
    if (S_ISLNK(st->st_mode)) {
      const std::string target = files::ReadLink(path);
      Add({{"type", type}, {"source", host}, {"symlink_to", target}}, "", "",
          "-> " + target + " (symlink, not followed)", host);
      return std::nullopt;
    }
    auto text = files::ReadAsStaged(path, kMaxFileBytes);
    if (!text.ok()) {
      out_.RecordFailure(kTopic, host, text.status().message());
      return std::nullopt;
    }
    return std::move(text).value();
  }

  void Crontab(const std::string& host, bool system_format, const std::string& owner) {
    std::optional<std::string> text = Read(host, "cron");
    if (!text) return;
    for (const files::CronEntry& e : files::ParseCrontab(*text, system_format, owner)) {
      Add({{"type", "cron"},
           {"source", host},
           {"line", e.line},
           {"schedule", e.schedule},
           {"user", e.user},
           {"command", e.command}},
          e.schedule, e.user, e.command, host + ":" + std::to_string(e.line));
    }
  }

  void RunPartsScript(const std::string& host, const std::string& period) {
    auto st = files::LStat(files::Under(s_, host));
    if (!st) return;
    nlohmann::json task = {{"type", "cron-script"},
                           {"source", host},
                           {"schedule", period},
                           {"user", "root"},
                           {"command", host},
                           {"mode", files::OctalMode(st->st_mode)}};
    if (S_ISLNK(st->st_mode)) task["symlink_to"] = files::ReadLink(files::Under(s_, host));
    Add(std::move(task), period + " (run-parts)", "root", host, host);
  }

  // /etc/anacrontab: "period delay job-identifier command".
  void Anacrontab(const std::string& host) {
    std::optional<std::string> text = Read(host, "anacron");
    if (!text) return;
    std::vector<std::string_view> lines = files::Lines(*text);
    for (size_t i = 0; i < lines.size(); ++i) {
      std::string_view line = files::Trim(lines[i]);
      if (files::IsBlankOrComment(line) || files::IsEnvAssignment(line)) continue;
      size_t rest = std::string_view::npos;
      std::vector<std::string_view> f = files::Fields(line, 3, &rest);
      const std::string schedule = f.size() >= 3 ? "period=" + std::string(f[0]) + " delay=" + std::string(f[1]) +
                                                       " id=" + std::string(f[2])
                                                 : "";
      const std::string command(rest == std::string_view::npos ? line : line.substr(rest));
      Add({{"type", "anacron"},
           {"source", host},
           {"line", i + 1},
           {"schedule", schedule},
           {"user", "root"},
           {"command", command}},
          schedule, "root", command, host + ":" + std::to_string(i + 1));
    }
  }

  void AtJobFile(const std::string& host, const std::string& name) {
    if (name.starts_with(".")) return;  // .SEQ, the job counter
    std::optional<std::string> text = Read(host, "at");
    if (!text) return;
    files::AtJob job = files::ParseAtJob(*text);
    std::string user = job.uid;
    try {
      if (!job.uid.empty()) {
        auto it = names_.find(static_cast<uint32_t>(std::stoul(job.uid)));
        if (it != names_.end()) user = it->second;
      }
    } catch (const std::exception&) {
    }
    const std::string when = AtRunTime(name);
    Add({{"type", "at"},
         {"source", host},
         {"schedule", when},
         {"user", user},
         {"uid", job.uid},
         {"commands", job.commands}},
        when, user, JoinLines(job.commands, " ; "), host);
  }

  // The unit a timer triggers and its Exec lines, looked up in `dirs` in order.
  nlohmann::json TriggeredUnit(const std::string& unit, const std::vector<std::string>& dirs) {
    for (const std::string& dir : dirs) {
      const std::string host = dir + "/" + unit;
      auto st = files::LStat(files::Under(s_, host));
      if (!st) continue;
      nlohmann::json u = {{"name", unit}, {"source", host}};
      if (S_ISLNK(st->st_mode)) {
        u["symlink_to"] = files::ReadLink(files::Under(s_, host));
        return u;
      }
      auto text = files::ReadRegularFile(files::Under(s_, host), kMaxFileBytes);
      std::vector<std::string> exec;
      if (text.ok()) {
        for (const files::UnitSetting& x : files::ParseUnitFile(*text)) {
          if (x.key.starts_with("Exec") || x.key == "User") exec.push_back(x.key + "=" + x.value);
        }
      }
      u["settings"] = exec;
      return u;
    }
    return {{"name", unit}, {"source", nullptr}};
  }

  // The timers in `timer_dirs`; triggered units are looked up in `lookup_dirs`. `user` says
  // whom they run as: "root" (system), "every user" or the home of the one user.
  void TimersIn(const std::vector<std::string>& timer_dirs, const std::vector<std::string>& lookup_dirs,
                const std::set<std::string>& package_dirs, const std::string& user,
                const std::map<std::string, std::vector<std::string>>& enable_links) {
    for (const std::string& dir : timer_dirs) {
      for (const std::string& name : Names(dir)) {
        if (out_.Exhausted()) return;
        if (!name.ends_with(".timer")) continue;
        const std::string host = dir + "/" + name;
        std::optional<std::string> text = Read(host, "systemd-timer");
        if (!text) continue;
        std::vector<std::string> schedule;
        std::string unit = name.substr(0, name.size() - 6) + ".service";
        for (const files::UnitSetting& x : files::ParseUnitFile(*text)) {
          if (x.section != "Timer") continue;
          if (x.key == "Unit") {
            unit = x.value;
          } else if (x.key.starts_with("On") || x.key == "Persistent" || x.key == "RandomizedDelaySec") {
            schedule.push_back(x.key + "=" + x.value);
          }
        }
        nlohmann::json triggered = TriggeredUnit(unit, lookup_dirs);
        auto links = enable_links.find(name);
        nlohmann::json task = {{"type", "systemd-timer"},
                               {"source", host},
                               {"timer", name},
                               {"schedule", schedule},
                               {"unit", triggered},
                               {"package_owned", package_dirs.count(dir) > 0},
                               {"enabled", links != enable_links.end()},
                               {"enabled_by", links != enable_links.end() ? links->second
                                                                          : std::vector<std::string>{}}};
        task["user"] = user;
        std::string command = unit;
        if (triggered.contains("settings")) {
          command += " [" + JoinLines(triggered["settings"].get<std::vector<std::string>>(), "; ") + "]";
        }
        Add(std::move(task), JoinLines(schedule, " "), user, command,
            host);
      }
    }
  }

  void Timers() {
    std::vector<std::string> system_dirs;
    std::set<std::string> package_dirs;
    for (const files::UnitDir& d : files::SystemUnitDirs(s_)) {
      system_dirs.push_back(d.host);
      if (d.package_owned) package_dirs.insert(d.host);
    }
    TimersIn(system_dirs, system_dirs, package_dirs, "root", files::EnableLinks(s_));
    // User timers: /etc/systemd/user applies to every user; ~/.config/systemd/user to one.
    const std::vector<std::string> global_user = {"/etc/systemd/user"};
    TimersIn(global_user, global_user, {}, "every user", files::EnableLinks(s_, global_user));
    for (const std::string& home : files::UserHomes(s_, users_)) {
      const std::string dir = files::InHome(home, ".config/systemd/user");
      TimersIn({dir}, {dir, "/etc/systemd/user"}, {}, home, files::EnableLinks(s_, {dir}));
    }
  }

  const CollectSources& s_;
  PackageStaging& out_;
  std::vector<files::PasswdEntry> users_;
  std::map<uint32_t, std::string> names_;
  nlohmann::json tasks_ = nlohmann::json::array();
  std::string text_;
};

}  // namespace

void CollectScheduledTasks(const CollectSources& sources, PackageStaging& out) {
  ScheduledTasks(sources, out).Run();
}

}  // namespace quell::agent::collect
