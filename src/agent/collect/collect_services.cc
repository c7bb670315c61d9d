// "Services": every systemd service unit file in the system unit directories, read from the
// files themselves (services.json, services.txt): its Exec lines, whether it is enabled (an
// enable symlink in a *.wants/*.requires directory of /etc or /run/systemd/system), masked,
// overridden by a unit of the same name in a directory that takes precedence, and its drop-ins
// (which can replace ExecStart). Also the /etc/init.d scripts, and with run_commands
// `systemctl list-units --type=service --all`.
#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"

namespace quell::agent::collect {
namespace {

constexpr char kTopic[] = "Services";
constexpr uint64_t kMaxUnitBytes = 1u << 20;
constexpr size_t kMaxServices = 10000;

std::vector<std::string> ExecSettings(std::string_view text, std::string* description,
                                      std::string* user) {
  std::vector<std::string> exec;
  for (const files::UnitSetting& x : files::ParseUnitFile(text)) {
    if (x.key.starts_with("Exec")) exec.push_back(x.key + "=" + x.value);
    if (description != nullptr && x.key == "Description") *description = x.value;
    if (user != nullptr && x.key == "User") *user = x.value;
  }
  return exec;
}

class Services {
 public:
  Services(const CollectSources& s, PackageStaging& out) : s_(s), out_(out) {}

  void Run() {
    const auto enable_links = files::EnableLinks(s_);
    const std::vector<files::UnitDir> dirs = files::SystemUnitDirs(s_);
    std::set<std::string> seen;  // unit names already found in a higher-precedence dir
    for (const files::UnitDir& dir : dirs) {
      for (const std::string& name : files::DirNames(files::Under(s_, dir.host))) {
        if (out_.Exhausted()) return;
        if (!name.ends_with(".service")) continue;
        if (services_.size() == kMaxServices) {
          out_.RecordFailure(kTopic, dir.host, "more than " + std::to_string(kMaxServices) +
                                                   " services; the rest are not listed");
          break;
        }
        const std::string host = dir.host + "/" + name;
        auto st = files::LStat(files::Under(s_, host));
        if (!st || S_ISDIR(st->st_mode)) continue;
        nlohmann::json svc = {{"name", name},
                              {"source", host},
                              {"package_owned", dir.package_owned},
                              {"overridden", seen.count(name) > 0}};
        seen.insert(name);
        std::string exec_start;
        if (S_ISLNK(st->st_mode)) {
          const std::string target = files::ReadLink(files::Under(s_, host));
          svc["symlink_to"] = target;
          svc["masked"] = target == "/dev/null";
          exec_start = "-> " + target;
        } else {
          auto text = files::ReadRegularFile(files::Under(s_, host), kMaxUnitBytes);
          if (!text.ok()) {
            out_.RecordFailure(kTopic, host, text.status().message());
          } else {
            std::string description, user;
            std::vector<std::string> exec = ExecSettings(*text, &description, &user);
            for (const std::string& e : exec) {
              if (e.starts_with("ExecStart=")) exec_start += (exec_start.empty() ? "" : "; ") + e.substr(10);
            }
            svc["description"] = description;
            if (!user.empty()) svc["user"] = user;
            svc["exec"] = exec;
          }
          svc["masked"] = false;
        }
        auto links = enable_links.find(name);
        svc["enabled"] = links != enable_links.end();
        svc["enabled_by"] = links != enable_links.end() ? links->second : std::vector<std::string>{};
        svc["drop_ins"] = DropIns(dirs, name);
        if (!svc["drop_ins"].empty()) {
          for (const auto& d : svc["drop_ins"]) {
            for (const auto& e : d["exec"]) {
              const std::string line = e.get<std::string>();
              if (line.starts_with("ExecStart=")) exec_start += " [drop-in: " + line.substr(10) + "]";
            }
          }
        }
        text_ += name + " | " + (svc["enabled"].get<bool>() ? "enabled" : "-") + " | " +
                 (svc["masked"].get<bool>() ? "masked" : "-") + " | " + host +
                 (svc["overridden"].get<bool>() ? " (overridden)" : "") + " | " + exec_start + "\n";
        services_.push_back(std::move(svc));
      }
    }

    nlohmann::json init_d = InitScripts();
    out_.AddJson(kTopic, "services.json", {{"services", std::move(services_)}, {"init_d", init_d}});
    std::string init_text;
    for (const auto& i : init_d) {
      init_text += i["name"].get<std::string>() + (i["executable"].get<bool>() ? "" : " (not executable)") + "\n";
    }
    out_.AddText(kTopic, "services.txt",
                 "# name | enabled | masked | unit file | ExecStart\n" + text_ +
                     "\n# /etc/init.d\n" + init_text);
    if (s_.run_commands) {
      out_.AddCommandOutput(kTopic, "systemctl_list_units.txt",
                            {"systemctl", "list-units", "--type=service", "--all", "--no-pager"});
    }
  }

 private:
  // <dir>/<name>.d/*.conf in every unit dir (and the template's drop-ins for an instance).
  nlohmann::json DropIns(const std::vector<files::UnitDir>& dirs, const std::string& name) {
    nlohmann::json out = nlohmann::json::array();
    std::vector<std::string> names = {name};
    if (files::UnitTemplate(name) != name) names.push_back(files::UnitTemplate(name));
    for (const files::UnitDir& dir : dirs) {
      for (const std::string& n : names) {
        const std::string d = dir.host + "/" + n + ".d";
        for (const std::string& conf : files::DirNames(files::Under(s_, d))) {
          if (!conf.ends_with(".conf")) continue;
          auto text = files::ReadRegularFile(files::Under(s_, d + "/" + conf), kMaxUnitBytes);
          if (!text.ok()) continue;
          out.push_back({{"source", d + "/" + conf},
                         {"exec", ExecSettings(*text, nullptr, nullptr)}});
        }
      }
    }
    return out;
  }

  nlohmann::json InitScripts() {
    nlohmann::json out = nlohmann::json::array();
    for (const std::string& name : files::DirNames(files::Under(s_, "/etc/init.d"))) {
      auto st = files::LStat(files::Under(s_, "/etc/init.d/" + name));
      if (!st) continue;
      out.push_back({{"name", name},
                     {"type", files::TypeName(st->st_mode)},
                     {"executable", (st->st_mode & 0111) != 0},
                     {"mtime", files::MtimeIso(*st)}});
    }
    return out;
  }

  const CollectSources& s_;
  PackageStaging& out_;
  nlohmann::json services_ = nlohmann::json::array();
  std::string text_;
};

}  // namespace

void CollectServices(const CollectSources& sources, PackageStaging& out) {
  Services(sources, out).Run();
}

}  // namespace quell::agent::collect
