#include "agent/live/live_remediation.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>

#include "agent/collect/process_table.h"
#include "agent/quarantine/file_state.h"
#include "agent/quarantine/process_tree.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/logging.h"
#include "common/unique_fd.h"

namespace quell::agent::live {
namespace {

using Json = nlohmann::json;
namespace q = quell::agent::quarantine;

auto Log() {
  static auto log = Logger("live");
  return log;
}

// Where unit files are looked up, in systemd's order of precedence.
const std::vector<std::string>& UnitDirs() {
  static const std::vector<std::string> k = {"/etc/systemd/system", "/run/systemd/system",
                                             "/usr/local/lib/systemd/system",
                                             "/usr/lib/systemd/system", "/lib/systemd/system"};
  return k;
}
// Where enable symlinks and aliases live.
const std::vector<std::string>& EnableDirs() {
  static const std::vector<std::string> k = {"/etc/systemd/system", "/run/systemd/system",
                                             "/usr/local/lib/systemd/system"};
  return k;
}

bool ValidUnitName(const std::string& name) {
  if (name.empty() || name.size() > 256 || name[0] == '.' || name.find("..") != std::string::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '_' || c == '.' ||
           c == '@' || c == '-' || c == '\\';
  });
}

std::string Basename(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Json Removed(const std::string& what, const std::string& location, const std::string& detail) {
  return {{"what", what}, {"location", location}, {"detail", detail}};
}

}  // namespace

Result<std::unique_ptr<LiveRemediation>> LiveRemediation::Open(RemediationOptions options) {
  std::unique_ptr<LiveRemediation> r(new LiveRemediation(std::move(options)));
  auto text = ReadFile(r->options_.journal_path);
  if (!text.ok()) {
    if (text.status().code() != StatusCode::kNotFound) return text.status().WithContext("remediation journal");
    return r;
  }
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("next") || !j["next"].is_number_unsigned() ||
      !j.contains("remediations") || !j["remediations"].is_array()) {
    return FailedPrecondition("remediation journal " + r->options_.journal_path + " is not readable");
  }
  r->journal_ = std::move(j);
  return r;
}

Json LiveRemediation::Records() const {
  std::lock_guard lock(mu_);
  return journal_["remediations"];
}

Status LiveRemediation::Save() {
  const std::string& p = options_.journal_path;
  QUELL_RETURN_IF_ERROR(MakeDirs(p.substr(0, p.rfind('/')), 0700));
  return WriteFileAtomic(p, journal_.dump(2, ' ', false, Json::error_handler_t::replace) + "\n")
      .WithContext("remediation journal");
}

Status LiveRemediation::Persist(Json& rec) {
  const uint64_t n = journal_["next"].get<uint64_t>();
  rec["id"] = "r" + std::to_string(n);
  journal_["next"] = n + 1;
  journal_["remediations"].push_back(rec);
  return Save();
}

Status LiveRemediation::Update(const Json& rec) {
  for (Json& r : journal_["remediations"]) {
    if (r["id"] == rec["id"]) r = rec;
  }
  return Save();
}

Status LiveRemediation::Systemctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"systemctl"};
  argv.insert(argv.end(), args.begin(), args.end());
  QUELL_ASSIGN_OR_RETURN(int rc, options_.persistence.run_command(argv));
  if (rc != 0) return Internal("systemctl " + args[0] + " exited with " + std::to_string(rc));
  return Status::Ok();
}

Result<Json> LiveRemediation::Remediate(const std::string& kind, const std::string& target,
                                        const std::string& session_id,
                                        const std::string& requested_by) {
  std::lock_guard lock(mu_);
  Json rec = {{"kind", kind},
              {"target", target},
              {"sessionId", session_id},
              {"requestedBy", requested_by},
              {"time", FormatIso8601(options_.clock->Now())},
              {"state", "applying"},
              {"undone", false},
              {"removed", Json::array()}};
  Status s = kind == "file"      ? RemediateFile(target, rec)
             : kind == "process" ? RemediateProcess(target, rec)
             : kind == "service" ? RemediateService(target, rec)
             : kind == "cron"    ? RemediateCron(target, rec)
                                 : InvalidArgument("remediate takes file, process, service or cron, not '" +
                                                   kind + "'");
  if (!s.ok()) {
    if (rec.contains("id")) {
      rec["state"] = "failed";
      rec["error"] = s.message();
      (void)Update(rec);
    }
    return s;
  }
  rec["state"] = "done";
  QUELL_RETURN_IF_ERROR(Update(rec));
  Log()->warn("remediation {} by {} (session {}): {} {}", rec["id"].get<std::string>(),
              requested_by, session_id, kind, target);
  return rec;
}

Status LiveRemediation::RemediateFile(const std::string& target, Json& rec) {
  if (options_.quarantine == nullptr) return FailedPrecondition("the quarantine is not available on this agent");
  if (target.empty() || target[0] != '/') return InvalidArgument("remediate file needs a path");
  const std::string path = q::JoinRoot(options_.persistence.root, target);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + target);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + target);
  if (!S_ISREG(st.st_mode)) return FailedPrecondition(target + " is not a regular file");
  QUELL_ASSIGN_OR_RETURN(FileHashes h, HashFd(fd.get()));
  rec["sha256"] = h.sha256;
  rec["quarantineId"] = "live-" + std::to_string(journal_["next"].get<uint64_t>()) + "-" +
                        std::to_string(options_.clock->Now());
  QUELL_RETURN_IF_ERROR(Persist(rec));
  QUELL_ASSIGN_OR_RETURN(Json result, options_.quarantine->StopAndQuarantine(
                                          {.id = rec["quarantineId"].get<std::string>(),
                                           .sha256 = h.sha256,
                                           .path_hint = target}));
  for (const Json& f : result.value("filesQuarantined", Json::array())) {
    rec["removed"].push_back(Removed("file", f.value("path", ""), "quarantined, sha256 " + h.sha256));
  }
  for (const Json& p : result.value("processesKilled", Json::array())) {
    rec["removed"].push_back(Removed("process", p.value("exe", ""),
                                     "pid " + std::to_string(p.value("pid", 0)) + " killed"));
  }
  for (const Json& p : result.value("persistenceRemoved", Json::array())) {
    rec["removed"].push_back(Removed(p.value("kind", ""), p.value("location", ""), p.value("detail", "")));
  }
  return Status::Ok();
}

Status LiveRemediation::RemediateProcess(const std::string& target, Json& rec) {
  if (target.empty() || target.size() > 9 ||
      !std::all_of(target.begin(), target.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument("remediate process needs a process id, not '" + target + "'");
  }
  const pid_t pid = static_cast<pid_t>(std::stol(target));
  const pid_t self = options_.self_pid != 0 ? options_.self_pid : ::getpid();
  if (pid <= 1) return FailedPrecondition("process " + target + " is never stopped");
  if (pid == self) return FailedPrecondition("process " + target + " is the agent itself");
  std::optional<q::ProcessInfo> info;
  for (q::ProcessInfo& p : q::ReadProcessTable(options_.proc_root)) {
    if (p.pid == pid) info = std::move(p);
  }
  if (!info) return NotFound("no process " + target + " (or it is a kernel thread)");
  std::string user;
  if (auto procs = collect::ListProcesses(
          options_.proc_root, {.passwd_path = q::JoinRoot(options_.persistence.root, "/etc/passwd"),
                               .hash_executables = false});
      procs.ok()) {
    for (const collect::ProcessRecord& p : *procs) {
      if (p.pid == pid) user = p.user;
    }
  }
  std::string cmdline;
  for (const std::string& a : info->argv) cmdline += (cmdline.empty() ? "" : " ") + a;
  rec["process"] = {{"pid", pid},
                    {"exe", collect::ValidUtf8(info->exe)},
                    {"exeDeleted", info->exe_deleted},
                    {"cmdline", collect::ValidUtf8(cmdline)},
                    {"user", user}};
  QUELL_RETURN_IF_ERROR(Persist(rec));
  q::PidfdSignaller signaller(options_.proc_root);
  QUELL_RETURN_IF_ERROR(signaller.Signal(*info, SIGKILL));
  if (!signaller.WaitExited({*info}, std::chrono::seconds(5)).empty()) {
    return Internal("process " + target + " is still running 5 s after SIGKILL");
  }
  rec["removed"].push_back(Removed("process", collect::ValidUtf8(info->exe),
                                   "pid " + target + " (user " + user + ") killed: " +
                                       collect::ValidUtf8(cmdline)));
  return Status::Ok();
}

Status LiveRemediation::ApplyChanges(Json& rec) {
  const q::PersistenceOptions& po = options_.persistence;
  std::vector<q::PersistenceChange> done;
  for (const Json& j : rec["changes"]) {
    QUELL_ASSIGN_OR_RETURN(q::PersistenceChange c, q::PersistenceChangeFromJson(j));
    if (Status s = q::RemovePersistence(po, c); !s.ok()) {
      for (auto it = done.rbegin(); it != done.rend(); ++it) {
        if (Status r = q::RestorePersistence(po, *it); !r.ok()) {
          Log()->error("cannot put back {} after a failed remediation: {}", it->location, r.ToString());
        }
      }
      return s.WithContext(c.location);
    }
    rec["removed"].push_back(Removed(c.kind, c.location, c.detail));
    done.push_back(std::move(c));
  }
  return Status::Ok();
}

Result<Json> LiveRemediation::RestoreChanges(const Json& rec) {
  Json restored = Json::array();
  const Json& changes = rec["changes"];
  Status first = Status::Ok();
  // In reverse: a unit file is back before the symlinks that point at it.
  for (auto it = changes.rbegin(); it != changes.rend(); ++it) {
    QUELL_ASSIGN_OR_RETURN(q::PersistenceChange c, q::PersistenceChangeFromJson(*it));
    if (Status s = q::RestorePersistence(options_.persistence, c); !s.ok()) {
      if (first.ok()) first = s.WithContext(c.location);
      continue;
    }
    restored.push_back(Removed(c.kind, c.location, c.detail));
  }
  QUELL_RETURN_IF_ERROR(first);
  return restored;
}

Status LiveRemediation::RemediateService(const std::string& target, Json& rec) {
  std::string unit = target;
  if (unit.find('.') == std::string::npos) unit += ".service";
  if (!ValidUnitName(unit)) return InvalidArgument("'" + target + "' is not a unit name");
  const q::PersistenceOptions& po = options_.persistence;
  Json changes = Json::array();
  auto add = [&](const std::string& host, const std::string& detail) {
    auto state = q::CaptureFileState(q::JoinRoot(po.root, host), po.max_file_bytes);
    if (!state.ok()) return;
    q::PersistenceChange c;
    c.kind = "systemd";
    c.location = host;
    c.detail = detail.empty() ? (state->type == q::FileState::Type::kSymlink
                                     ? "unit file (symlink -> " + state->content + ")"
                                     : "unit file")
                              : detail + state->content;
    c.unit = unit;
    c.remove_file = true;
    c.before = std::move(*state);
    changes.push_back(q::PersistenceChangeToJson(c));
  };
  // Enable symlinks and aliases first: removed before the unit, restored after it.
  for (const std::string& dir : EnableDirs()) {
    for (const std::string& entry : DirEntries(q::JoinRoot(po.root, dir))) {
      const std::string host = dir + "/" + entry;
      auto check = [&](const std::string& link) {
        struct stat st {};
        const std::string fs = q::JoinRoot(po.root, link);
        if (::lstat(fs.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return;
        char buf[4096];
        const ssize_t n = ::readlink(fs.c_str(), buf, sizeof buf);
        if (n < 0) return;
        const std::string to(buf, static_cast<size_t>(n));
        if (Basename(link) == unit || Basename(to) == unit) add(link, "enable symlink -> ");
      };
      if (entry.ends_with(".wants") || entry.ends_with(".requires") || entry.ends_with(".upholds")) {
        for (const std::string& link : DirEntries(q::JoinRoot(po.root, host))) check(host + "/" + link);
      } else if (entry != unit) {
        check(host);
      }
    }
  }
  bool found_unit = false;
  for (const std::string& dir : UnitDirs()) {
    const size_t before = changes.size();
    add(dir + "/" + unit, "");
    found_unit |= changes.size() > before;
  }
  if (!found_unit) return NotFound("no unit file " + unit + " in " + UnitDirs().front() + " or the other unit directories");
  rec["unit"] = unit;
  rec["changes"] = std::move(changes);
  if (po.use_systemctl) {
    auto active = po.run_command({"systemctl", "is-active", "--quiet", unit});
    rec["wasActive"] = active.ok() && *active == 0;
  }
  QUELL_RETURN_IF_ERROR(Persist(rec));
  if (po.use_systemctl) {
    if (Status s = Systemctl({"stop", unit}); !s.ok()) Log()->warn("remediate service {}: {}", unit, s.ToString());
  }
  QUELL_RETURN_IF_ERROR(ApplyChanges(rec));
  if (po.use_systemctl) {
    if (Status s = Systemctl({"daemon-reload"}); !s.ok()) Log()->warn("remediate service {}: {}", unit, s.ToString());
  }
  return Status::Ok();
}

Status LiveRemediation::RemediateCron(const std::string& target, Json& rec) {
  if (target.empty()) return InvalidArgument("remediate cron needs what the entries name");
  Json changes = Json::array();
  for (const q::PersistenceChange& c : q::FindPersistence(options_.persistence, target)) {
    if (c.kind == "cron") changes.push_back(q::PersistenceChangeToJson(c));
  }
  if (changes.empty()) return NotFound("no cron entry names " + target);
  rec["changes"] = std::move(changes);
  QUELL_RETURN_IF_ERROR(Persist(rec));
  return ApplyChanges(rec);
}

Result<Json> LiveRemediation::Undo(const std::optional<std::string>& id) {
  std::lock_guard lock(mu_);
  Json* found = nullptr;
  for (Json& r : journal_["remediations"]) {
    if (id) {
      if (r["id"] == *id) found = &r;
    } else if (!r.value("undone", false) && r.value("state", "") != "failed") {
      found = &r;  // the last one wins
    }
  }
  if (found == nullptr) {
    return NotFound(id ? "no remediation " + *id : std::string("no remediation to undo"));
  }
  Json rec = *found;
  const std::string rid = rec["id"].get<std::string>();
  if (rec.value("undone", false)) return FailedPrecondition(rid + " was undone already");
  if (rec.value("state", "") == "failed") {
    return FailedPrecondition(rid + " did not complete (" + rec.value("error", "") + "); nothing to undo");
  }
  const std::string kind = rec.value("kind", "");
  if (kind == "process") {
    const Json& p = rec["process"];
    return FailedPrecondition("a stopped process cannot be restarted; its executable is " +
                              p.value("exe", "") + " (pid " + std::to_string(p.value("pid", 0)) +
                              ", user " + p.value("user", "") + ", command line: " +
                              p.value("cmdline", "") + ")");
  }
  Json restored = Json::array();
  if (kind == "file") {
    if (options_.quarantine == nullptr) return FailedPrecondition("the quarantine is not available on this agent");
    QUELL_ASSIGN_OR_RETURN(Json result, options_.quarantine->Restore(rec["quarantineId"].get<std::string>()));
    for (const Json& f : result.value("filesRestored", Json::array())) {
      restored.push_back(f.is_object() ? Removed("file", f.value("path", ""), "restored from the quarantine")
                                       : Removed("file", f.is_string() ? f.get<std::string>() : f.dump(), ""));
    }
    for (const Json& p : result.value("persistenceRestored", Json::array())) {
      restored.push_back(p.is_object() ? Removed(p.value("kind", ""), p.value("location", ""), p.value("detail", ""))
                                       : Removed("persistence", p.dump(), ""));
    }
  } else {
    QUELL_ASSIGN_OR_RETURN(restored, RestoreChanges(rec));
    if (kind == "service" && options_.persistence.use_systemctl) {
      (void)Systemctl({"daemon-reload"});
      if (rec.value("wasActive", false)) {
        if (Status s = Systemctl({"start", rec.value("unit", "")}); !s.ok()) {
          Log()->warn("undo {}: {}", rid, s.ToString());
        }
      }
    }
  }
  rec["undone"] = true;
  rec["state"] = "undone";
  rec["undoneTime"] = FormatIso8601(options_.clock->Now());
  rec["restored"] = restored;
  QUELL_RETURN_IF_ERROR(Update(rec));
  Log()->warn("remediation {} undone", rid);
  return rec;
}

}  // namespace quell::agent::live
