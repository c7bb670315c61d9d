#include "agent/quarantine/file_quarantine.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include <algorithm>
#include <map>

#include "agent/scan/scan_targets.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/logging.h"

namespace quell::agent::quarantine {
namespace {

auto Log() {
  static auto log = Logger("agent.quarantine");
  return log;
}

void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

bool IsHex(const std::string& s, size_t len) {
  return s.size() == len && s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Str(const nlohmann::json& j) {
  auto r = BytesFromJson(j);
  return r.ok() ? *r : std::string();
}

// Host path of a path under root ("/r/tmp/x" -> "/tmp/x").
std::string HostPath(const std::string& root, const std::string& fs_path) {
  if (root.empty() || root == "/") return fs_path;
  std::string r = root;
  while (!r.empty() && r.back() == '/') r.pop_back();
  if (fs_path.starts_with(r + "/")) return fs_path.substr(r.size());
  return fs_path;
}

// The package that installed `host_path` unmodified (its MD5 as dpkg recorded it), or "".
// Such files are never quarantined: a hash shared with a system binary (a copy of /bin/sh
// used as malware) must not take the host's shell away. Only called for files that matched.
std::string UnmodifiedPackageOwner(const std::string& root, const std::string& host_path,
                                   const std::string& md5) {
  std::vector<std::string> forms = {host_path};
  char resolved[PATH_MAX];
  if (::realpath(JoinRoot(root, host_path).c_str(), resolved) != nullptr) {
    forms.push_back(HostPath(root, resolved));
  }
  for (size_t i = 0, n = forms.size(); i < n; ++i) {  // merged /usr: dpkg may record /bin/x
    if (forms[i].starts_with("/usr/")) forms.push_back(forms[i].substr(4));
  }
  const std::string dir = JoinRoot(root, "/var/lib/dpkg/info");
  auto names = ListFiles(dir);
  if (!names.ok()) return "";
  for (const std::string& name : *names) {
    if (!name.ends_with(".md5sums")) continue;
    auto text = ReadFile(dir + "/" + name);
    if (!text.ok()) continue;
    for (const std::string& form : forms) {
      const std::string needle = md5 + "  " + form.substr(1) + "\n";
      if (text->starts_with(needle) || text->find("\n" + needle) != std::string::npos) {
        std::string pkg = name.substr(0, name.size() - 8);
        return pkg.substr(0, pkg.find(':'));
      }
    }
  }
  return "";
}

// The action result reported for a quarantine operation record.
nlohmann::json ResultOf(const nlohmann::json& op) {
  nlohmann::json files = nlohmann::json::array(), persistence = nlohmann::json::array();
  for (const auto& f : op["files"]) {
    files.push_back({{"path", f["path"]}, {"sha256", f["sha256"]}, {"sha1", f["sha1"]},
                     {"md5", f["md5"]}, {"size", f["size"]}, {"vaultId", f["vaultId"]}});
  }
  for (const auto& p : op["persistence"]) {
    persistence.push_back({{"kind", p["change"]["kind"]},
                           {"location", p["change"]["location"]},
                           {"detail", p["change"]["detail"]}});
  }
  return {{"quarantineActionId", op["id"]}, {"sha256", op["sha256"]},
          {"filesQuarantined", std::move(files)}, {"processesKilled", op["processes"]},
          {"persistenceRemoved", std::move(persistence)},
          {"filesSkipped", op.value("skipped", nlohmann::json::array())}};
}

}  // namespace

struct FileQuarantine::Candidate {
  std::string host_path;
  std::string fs_path;
  bool deleted_exe = false;  // only reachable through /proc/<pid>/exe
  std::string protected_reason;  // not quarantined (and its processes not killed) when set
  uint64_t dev = 0, ino = 0;
  FileHashes hashes;
};

FileQuarantine::FileQuarantine(QuarantineSettings settings, QuarantineHooks hooks,
                               std::unique_ptr<QuarantineVault> vault)
    : settings_(std::move(settings)), hooks_(std::move(hooks)), vault_(std::move(vault)) {
  if (hooks_.signaller == nullptr) hooks_.signaller = std::make_shared<PidfdSignaller>(settings_.proc_root);
  if (!hooks_.run_command) hooks_.run_command = RunCommand;
}

std::string FileQuarantine::OpsDir() const { return settings_.state_dir + "/quarantine/ops"; }

PersistenceOptions FileQuarantine::PersistenceOpts() const {
  PersistenceOptions o;
  o.root = settings_.root;
  o.use_systemctl = settings_.use_systemctl;
  o.run_command = hooks_.run_command;
  return o;
}

Result<std::unique_ptr<FileQuarantine>> FileQuarantine::Open(QuarantineSettings settings,
                                                             QuarantineHooks hooks) {
  if (settings.state_dir.empty()) return InvalidArgument("quarantine: state_dir is empty");
  QUELL_ASSIGN_OR_RETURN(std::unique_ptr<QuarantineVault> vault,
                         QuarantineVault::Open(settings.state_dir + "/quarantine/vault"));
  std::unique_ptr<FileQuarantine> q(
      new FileQuarantine(std::move(settings), std::move(hooks), std::move(vault)));
  QUELL_RETURN_IF_ERROR(MakeDirs(q->OpsDir(), 0700));
  q->RecomputeBlocked();
  // Complete (or roll back) what a crash interrupted.
  QUELL_ASSIGN_OR_RETURN(std::vector<std::string> names, ListFiles(q->OpsDir()));
  for (const std::string& name : names) {
    if (!name.ends_with(".json")) continue;
    const std::string id = name.substr(0, name.size() - 5);
    auto op = q->Load(id);
    if (!op.ok()) {
      Log()->error("quarantine record {} is unreadable: {}", id, op.status().ToString());
      continue;
    }
    const std::string state = (*op)["state"].get<std::string>();
    if (state == "active") {
      Status s = q->Execute(*op);
      if (s.ok()) {
        q->recovered_.push_back(id + ": completed");
        Log()->warn("action={} interrupted quarantine completed", id);
      } else {
        Status rb = q->RollBack(*op, s.message());
        q->recovered_.push_back(id + ": rolled back: " + s.message());
        Log()->warn("action={} interrupted quarantine rolled back ({}){}", id, s.ToString(),
                    rb.ok() ? "" : "; roll back incomplete: " + rb.ToString());
      }
    } else if (state == "restoring") {
      Status s = q->ExecuteRestore(*op);
      q->recovered_.push_back(id + (s.ok() ? ": restore completed" : ": restore failed: " + s.message()));
      if (!s.ok()) Log()->error("action={} interrupted restore: {}", id, s.ToString());
    }
  }
  q->RecomputeBlocked();
  return q;
}

void FileQuarantine::Step(const std::string& name) {
  if (hooks_.after_step) hooks_.after_step(name);
}

Status FileQuarantine::Save(const nlohmann::json& op) {
  const std::string id = op["id"].get<std::string>();
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(OpsDir() + "/" + id + ".json", op.dump(1), 0600));
  SyncDir(OpsDir());
  return Status::Ok();
}

Result<nlohmann::json> FileQuarantine::Load(const std::string& id) const {
  if (!IsSafeId(id)) return InvalidArgument("'" + id + "' is not a valid quarantine action id");
  const std::string path = OpsDir() + "/" + id + ".json";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return NotFound("no quarantine operation " + id);
  QUELL_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("state")) {
    return FailedPrecondition("quarantine record " + path + " is malformed");
  }
  return j;
}

Result<nlohmann::json> FileQuarantine::Record(const std::string& id) const { return Load(id); }

void FileQuarantine::RecomputeBlocked() {
  std::set<std::string> blocked;
  auto names = ListFiles(OpsDir());
  if (names.ok()) {
    for (const std::string& name : *names) {
      if (!name.ends_with(".json")) continue;
      auto op = Load(name.substr(0, name.size() - 5));
      if (!op.ok()) continue;
      const std::string state = (*op)["state"].get<std::string>();
      if (state == "active" || state == "done" || state == "restoring") {
        blocked.insert((*op)["sha256"].get<std::string>());
      }
    }
  }
  {
    std::unique_lock lock(blocked_mu_);
    blocked_ = std::move(blocked);
  }
  if (hooks_.on_blocked_changed) hooks_.on_blocked_changed();
}

bool FileQuarantine::Contains(std::string_view sha256) const {
  const std::string key = Lower(std::string(sha256));
  std::shared_lock lock(blocked_mu_);
  return blocked_.contains(key);
}

std::vector<std::string> FileQuarantine::Sha256s() const {
  std::shared_lock lock(blocked_mu_);
  return {blocked_.begin(), blocked_.end()};
}

Result<std::vector<FileQuarantine::Candidate>> FileQuarantine::FindFiles(
    const QuarantineRequest& request, std::string& searched) {
  struct Where {
    std::string host, fs;
    bool deleted_exe = false;
  };
  std::vector<Where> where;
  size_t n_hint = 0, n_proc = 0, n_persist = 0, n_quick = 0;
  if (!request.path_hint.empty()) {
    where.push_back({request.path_hint, JoinRoot(settings_.root, request.path_hint)});
    n_hint = 1;
  }
  for (const ProcessInfo& p : ReadProcessTable(settings_.proc_root)) {
    if (p.exe.empty()) continue;
    ++n_proc;
    if (p.exe_deleted) {
      where.push_back({p.exe, settings_.proc_root + "/" + std::to_string(p.pid) + "/exe", true});
    } else {
      where.push_back({p.exe, JoinRoot(settings_.root, p.exe)});
    }
  }
  for (const std::string& path : PathsNamedByPersistence(PersistenceOpts())) {
    where.push_back({path, JoinRoot(settings_.root, path)});
    ++n_persist;
  }
  if (settings_.search_quick_scan_locations) {
    auto targets = scan::QuickScanTargets({.root = settings_.root, .include_processes = false});
    auto files = scan::EnumerateFiles(targets, {}, std::stop_token{}, nullptr);
    if (files.ok()) {
      for (const scan::FileItem& f : *files) {
        if (f.size > settings_.max_file_bytes) continue;
        where.push_back({HostPath(settings_.root, f.open_path), f.open_path});
        ++n_quick;
      }
    }
  }
  searched = (n_hint ? "the given path " + request.path_hint + ", " : std::string()) +
             std::to_string(n_proc) + " running executables, " + std::to_string(n_persist) +
             " paths named by persistence entries and " + std::to_string(n_quick) +
             " files in the quick-scan locations";

  std::vector<Candidate> out;
  std::set<std::pair<uint64_t, uint64_t>> seen;
  for (const Where& w : where) {
    struct stat st {};
    const int rc = w.deleted_exe ? ::stat(w.fs.c_str(), &st) : ::lstat(w.fs.c_str(), &st);
    if (rc != 0 || !S_ISREG(st.st_mode)) continue;
    if (static_cast<uint64_t>(st.st_size) > settings_.max_file_bytes) continue;
    if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
    auto hashes = HashFile(w.fs);
    if (!hashes.ok()) continue;
    const bool match = request.sha256.empty() ? hashes->sha1 == request.sha1
                                              : hashes->sha256 == request.sha256;
    if (!match) continue;
    Candidate c{w.host, w.fs, w.deleted_exe, "", static_cast<uint64_t>(st.st_dev),
                static_cast<uint64_t>(st.st_ino), std::move(*hashes)};
    if (!w.deleted_exe) {
      if (std::string pkg = UnmodifiedPackageOwner(settings_.root, w.host, c.hashes.md5); !pkg.empty()) {
        c.protected_reason = "unmodified file of package " + pkg;
      }
    }
    struct stat self {};
    if (::stat("/proc/self/exe", &self) == 0 && self.st_dev == st.st_dev && self.st_ino == st.st_ino) {
      c.protected_reason = "the agent's own executable";
    }
    out.push_back(std::move(c));
  }
  return out;
}

Result<nlohmann::json> FileQuarantine::StopAndQuarantine(const QuarantineRequest& raw) {
  QuarantineRequest request = raw;
  request.sha256 = Lower(request.sha256);
  request.sha1 = Lower(request.sha1);
  if (!IsSafeId(request.id)) return InvalidArgument("'" + request.id + "' is not a valid action id");
  if (request.sha256.empty() == request.sha1.empty()) {
    return InvalidArgument("give exactly one of Sha256 and Sha1");
  }
  if (!request.sha256.empty() && !IsHex(request.sha256, 64)) {
    return InvalidArgument("Sha256 must be 64 hex digits");
  }
  if (!request.sha1.empty() && !IsHex(request.sha1, 40)) return InvalidArgument("Sha1 must be 40 hex digits");
  if (!request.path_hint.empty() && !request.path_hint.starts_with('/')) {
    return InvalidArgument("Path must be absolute");
  }

  std::lock_guard lock(op_mu_);
  if (auto existing = Load(request.id); existing.ok()) {
    const std::string state = (*existing)["state"].get<std::string>();
    if (state == "active") {
      if (Status s = Execute(*existing); !s.ok()) {
        (void)RollBack(*existing, s.message());
        RecomputeBlocked();
        return s;
      }
    } else if (state == "rolledBack") {
      return FailedPrecondition("quarantine " + request.id + " was rolled back: " +
                                (*existing)["error"].get<std::string>());
    } else if (state != "done") {
      return FailedPrecondition("quarantine " + request.id + " was already undone (" + state + ")");
    }
    return ResultOf(*existing);
  }

  // 1. Find.
  std::string searched;
  QUELL_ASSIGN_OR_RETURN(std::vector<Candidate> found, FindFiles(request, searched));
  const std::string query = request.sha256.empty() ? "SHA-1 " + request.sha1 : "SHA-256 " + request.sha256;
  if (found.empty()) return NotFound("no file with " + query + " was found; looked at " + searched);
  nlohmann::json skipped = nlohmann::json::array();
  std::erase_if(found, [&](const Candidate& c) {
    if (c.protected_reason.empty()) return false;
    skipped.push_back({{"path", BytesToJson(c.host_path)}, {"reason", c.protected_reason}});
    Log()->warn("action={} not quarantining {}: {}", request.id, c.host_path, c.protected_reason);
    return true;
  });
  if (found.empty()) {
    std::string what;
    for (const auto& s : skipped) what += (what.empty() ? "" : "; ") + Str(s["path"]) + " (" + s["reason"].get<std::string>() + ")";
    return FailedPrecondition("refusing to quarantine " + query + ": every file with it is protected: " + what);
  }

  // 2. Plan.
  nlohmann::json op = {{"id", request.id},
                       {"state", "active"},
                       {"sha256", found.front().hashes.sha256},
                       {"sha1", found.front().hashes.sha1},
                       {"files", nlohmann::json::array()},
                       {"processFiles", nlohmann::json::array()},
                       {"persistence", nlohmann::json::array()},
                       {"units", nlohmann::json::array()},
                       {"processes", nlohmann::json::array()},
                       {"skipped", skipped},
                       {"error", ""}};
  std::set<std::string> locations;
  std::map<std::string, bool> units;
  int file_no = 0;
  for (const Candidate& c : found) {
    op["processFiles"].push_back({{"path", BytesToJson(c.host_path)}, {"dev", c.dev}, {"ino", c.ino}});
    if (c.deleted_exe) continue;  // only in memory: killed, nothing on disk to move
    op["files"].push_back({{"path", BytesToJson(c.host_path)},
                           {"fsPath", BytesToJson(c.fs_path)},
                           {"sha256", c.hashes.sha256},
                           {"sha1", c.hashes.sha1},
                           {"md5", c.hashes.md5},
                           {"size", c.hashes.size},
                           {"dev", c.dev},
                           {"ino", c.ino},
                           {"vaultId", request.id + "-" + std::to_string(file_no++)},
                           {"step", "planned"}});
    for (PersistenceChange& ch : FindPersistence(PersistenceOpts(), c.host_path)) {
      if (!locations.insert(ch.location).second) continue;  // two copies named in one place
      if (ch.kind == "systemd" && !ch.user_unit && !units.contains(ch.unit)) {
        bool active = false;
        if (settings_.use_systemctl) {
          auto rc = hooks_.run_command({"systemctl", "is-active", "--quiet", ch.unit});
          active = rc.ok() && *rc == 0;
        }
        units[ch.unit] = active;
      }
      op["persistence"].push_back({{"change", PersistenceChangeToJson(ch)}, {"step", "planned"}});
    }
  }
  for (const auto& [name, active] : units) {
    op["units"].push_back({{"name", name}, {"wasActive", active}});
  }

  // 3. Intent.
  QUELL_RETURN_IF_ERROR(Save(op));
  {
    std::unique_lock block(blocked_mu_);
    blocked_.insert(op["sha256"].get<std::string>());
  }
  if (hooks_.on_blocked_changed) hooks_.on_blocked_changed();
  Log()->warn("action={} quarantining {}: {} file(s), {} persistence entr(ies)", request.id, query,
              op["files"].size(), op["persistence"].size());
  Step("journal:intent");

  if (Status s = Execute(op); !s.ok()) {
    Status rb = RollBack(op, s.message());
    RecomputeBlocked();
    Log()->error("action={} quarantine failed and was rolled back: {}{}", request.id, s.ToString(),
                 rb.ok() ? "" : "; roll back incomplete: " + rb.ToString());
    return s;
  }
  return ResultOf(op);
}

Status FileQuarantine::Execute(nlohmann::json& op) {
  const std::string id = op["id"].get<std::string>();
  const std::string sha256 = op["sha256"].get<std::string>();
  const PersistenceOptions popts = PersistenceOpts();

  // 4. Units first (so systemd does not restart what is killed next), then every entry.
  if (settings_.use_systemctl) {
    for (const auto& u : op["units"]) {
      const std::string name = u["name"].get<std::string>();
      for (const char* verb : {"stop", "disable"}) {
        auto rc = hooks_.run_command({"systemctl", verb, name});
        if (!rc.ok() || *rc != 0) {
          Log()->warn("action={} systemctl {} {} failed ({})", id, verb, name,
                      rc.ok() ? "exit " + std::to_string(*rc) : rc.status().ToString());
        }
      }
    }
  }
  for (size_t i = 0; i < op["persistence"].size(); ++i) {
    nlohmann::json& entry = op["persistence"][i];
    if (entry["step"] == "removed") continue;
    QUELL_ASSIGN_OR_RETURN(PersistenceChange ch, PersistenceChangeFromJson(entry["change"]));
    QUELL_RETURN_IF_ERROR(RemovePersistence(popts, ch).WithContext("removing " + ch.kind + " entry"));
    Step("persistence:" + std::to_string(i));
    entry["step"] = "removed";
    QUELL_RETURN_IF_ERROR(Save(op));
    Step("journal:persistence:" + std::to_string(i));
  }
  if (settings_.use_systemctl && !op["units"].empty()) {
    (void)hooks_.run_command({"systemctl", "daemon-reload"});
  }

  // 5. Kill.
  std::vector<FileIdentity> identities;
  for (const auto& f : op["processFiles"]) {
    identities.push_back({Str(f["path"]), true, f["dev"].get<uint64_t>(), f["ino"].get<uint64_t>()});
  }
  KillOptions kopts{.proc_root = settings_.proc_root, .self_pid = hooks_.self_pid};
  auto kill_all = [&]() -> Status {
    QUELL_ASSIGN_OR_RETURN(std::vector<KilledProcess> killed,
                           KillProcessesRunning(identities, kopts, *hooks_.signaller));
    for (const KilledProcess& k : killed) {
      op["processes"].push_back({{"pid", k.pid}, {"exe", BytesToJson(k.exe)}, {"reason", k.reason},
                                 {"file", BytesToJson(k.file)}});
      Log()->warn("action={} killed pid {} ({}, {})", id, k.pid, k.exe, k.reason);
    }
    return Status::Ok();
  };
  QUELL_RETURN_IF_ERROR(kill_all());
  Step("killed");
  QUELL_RETURN_IF_ERROR(Save(op));
  Step("journal:killed");

  // 6. Vault copy (fsynced), then unlink.
  for (size_t i = 0; i < op["files"].size(); ++i) {
    nlohmann::json& f = op["files"][i];
    const std::string fs_path = Str(f["fsPath"]);
    const std::string vault_id = f["vaultId"].get<std::string>();
    if (f["step"] == "planned") {
      auto item = vault_->Store(fs_path, vault_id);
      if (!item.ok() && item.status().code() == StatusCode::kNotFound) {
        // Vanished before it was copied (someone else removed it): nothing to quarantine.
        return FailedPrecondition(fs_path + " disappeared before it could be quarantined");
      }
      if (!item.ok()) return item.status();
      if (item->sha256 != sha256) {
        (void)vault_->Delete(vault_id);
        return FailedPrecondition(fs_path + " changed (its SHA-256 is now " + item->sha256 + ")");
      }
      Step("stored:" + std::to_string(i));
      f["step"] = "stored";
      QUELL_RETURN_IF_ERROR(Save(op));
      Step("journal:stored:" + std::to_string(i));
    }
    if (f["step"] == "stored") {
      QUELL_ASSIGN_OR_RETURN(VaultItem item, vault_->Find(vault_id));
      struct stat st {};
      if (::lstat(fs_path.c_str(), &st) == 0) {
        // Unlink only the very file that was copied.
        if (static_cast<uint64_t>(st.st_dev) != item.dev || static_cast<uint64_t>(st.st_ino) != item.ino ||
            st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec != item.mtime_ns ||
            static_cast<uint64_t>(st.st_size) != item.size) {
          return FailedPrecondition(fs_path + " changed after it was copied into the vault");
        }
        QUELL_RETURN_IF_ERROR(RemovePath(fs_path));
      }
      Step("unlinked:" + std::to_string(i));
      f["step"] = "removed";
      QUELL_RETURN_IF_ERROR(Save(op));
      Step("journal:removed:" + std::to_string(i));
    }
  }

  // 7. Anything started meanwhile (it ran before the unlink and before the exec gate knew).
  QUELL_RETURN_IF_ERROR(kill_all());
  op["state"] = "done";
  QUELL_RETURN_IF_ERROR(Save(op));
  Step("journal:done");
  Log()->warn("action={} quarantine of {} done: {} file(s), {} process(es), {} persistence entr(ies)",
              id, sha256, op["files"].size(), op["processes"].size(), op["persistence"].size());
  return Status::Ok();
}

Status FileQuarantine::RollBack(nlohmann::json& op, const std::string& reason) {
  const PersistenceOptions popts = PersistenceOpts();
  Status first;
  auto note = [&](Status s) {
    if (!s.ok() && first.ok()) first = s;
  };
  for (auto it = op["files"].rbegin(); it != op["files"].rend(); ++it) {
    nlohmann::json& f = *it;
    if (f["step"] == "planned") {
      // A crash may have come between a complete Store and the journal: drop that copy if
      // the original is still there.
      struct stat st {};
      if (::lstat(Str(f["fsPath"]).c_str(), &st) == 0) (void)vault_->Delete(f["vaultId"].get<std::string>());
      continue;
    }
    const std::string vault_id = f["vaultId"].get<std::string>();
    Status s = vault_->Restore(vault_id);  // Ok if the original is still in place
    note(s);
    if (s.ok()) {
      (void)vault_->Delete(vault_id);
      f["step"] = "planned";
    }
  }
  for (auto it = op["persistence"].rbegin(); it != op["persistence"].rend(); ++it) {
    nlohmann::json& entry = *it;
    auto ch = PersistenceChangeFromJson(entry["change"]);
    if (!ch.ok()) {
      note(ch.status());
      continue;
    }
    if (entry["step"] == "planned") {
      // Removed just before a crash, without the journal knowing?
      auto cur = CaptureFileState(ch->before.path, popts.max_file_bytes);
      const bool removed = ch->remove_file ? (!cur.ok() && cur.status().code() == StatusCode::kNotFound)
                                           : (cur.ok() && cur->content == ch->after);
      if (!removed) continue;
    }
    Status s = RestorePersistence(popts, *ch);
    note(s);
    if (s.ok()) entry["step"] = "planned";
  }
  if (settings_.use_systemctl && !op["units"].empty()) {
    (void)hooks_.run_command({"systemctl", "daemon-reload"});
    for (const auto& u : op["units"]) {
      if (u["wasActive"].get<bool>()) {
        (void)hooks_.run_command({"systemctl", "enable", u["name"].get<std::string>()});
        (void)hooks_.run_command({"systemctl", "start", u["name"].get<std::string>()});
      }
    }
  }
  op["state"] = first.ok() ? "rolledBack" : "active";
  op["error"] = reason;
  note(Save(op));
  return first;
}

Status FileQuarantine::ExecuteRestore(nlohmann::json& op) {
  const std::string id = op["id"].get<std::string>();
  const PersistenceOptions popts = PersistenceOpts();
  if (op["state"] != "restoring") {
    op["state"] = "restoring";
    QUELL_RETURN_IF_ERROR(Save(op));
    Step("journal:restoring");
  }
  for (auto it = op["files"].rbegin(); it != op["files"].rend(); ++it) {
    nlohmann::json& f = *it;
    if (f["step"] != "removed") continue;
    QUELL_RETURN_IF_ERROR(vault_->Restore(f["vaultId"].get<std::string>()));
    f["step"] = "restored";
    QUELL_RETURN_IF_ERROR(Save(op));
    Step("journal:file-restored");
  }
  for (auto it = op["persistence"].rbegin(); it != op["persistence"].rend(); ++it) {
    nlohmann::json& entry = *it;
    if (entry["step"] != "removed") continue;
    QUELL_ASSIGN_OR_RETURN(PersistenceChange ch, PersistenceChangeFromJson(entry["change"]));
    QUELL_RETURN_IF_ERROR(RestorePersistence(popts, ch).WithContext("restoring " + ch.kind + " entry"));
    entry["step"] = "restored";
    QUELL_RETURN_IF_ERROR(Save(op));
    Step("journal:persistence-restored");
  }
  if (settings_.use_systemctl && !op["units"].empty()) {
    (void)hooks_.run_command({"systemctl", "daemon-reload"});
    for (const auto& u : op["units"]) {
      if (u["wasActive"].get<bool>()) (void)hooks_.run_command({"systemctl", "start", u["name"].get<std::string>()});
    }
  }
  for (const auto& f : op["files"]) (void)vault_->Delete(f["vaultId"].get<std::string>());
  op["state"] = "restored";
  QUELL_RETURN_IF_ERROR(Save(op));
  Step("journal:restored");
  Log()->warn("action={} quarantine undone: {} file(s) and {} persistence entr(ies) restored", id,
              op["files"].size(), op["persistence"].size());
  return Status::Ok();
}

Result<nlohmann::json> FileQuarantine::RestoreLocked(const std::string& id) {
  QUELL_ASSIGN_OR_RETURN(nlohmann::json op, Load(id));
  const std::string state = op["state"].get<std::string>();
  if (state == "active" || state == "rolledBack") {
    return FailedPrecondition("quarantine " + id + " did not complete (" + state + "); nothing to restore");
  }
  if (state == "done") {
    // Refuse before changing anything if a path is taken by something else.
    for (const auto& f : op["files"]) {
      const std::string path = Str(f["fsPath"]);
      struct stat st {};
      if (f["step"] != "removed" || ::lstat(path.c_str(), &st) != 0) continue;
      auto h = S_ISREG(st.st_mode) ? HashFile(path) : Result<FileHashes>(FailedPrecondition(""));
      if (!h.ok() || h->sha256 != f["sha256"].get<std::string>()) {
        return AlreadyExists("a different file now exists at " + Str(f["path"]) +
                             "; nothing was restored (move it away, then restore again)");
      }
    }
    for (const auto& entry : op["persistence"]) {
      QUELL_ASSIGN_OR_RETURN(PersistenceChange ch, PersistenceChangeFromJson(entry["change"]));
      if (!ch.remove_file || entry["step"] != "removed") continue;
      auto cur = CaptureFileState(ch.before.path);
      if (cur.ok() && !cur->SameContent(ch.before)) {
        return AlreadyExists(ch.location + " now holds something else; nothing was restored");
      }
    }
  }
  if (state == "done" || state == "restoring") {
    QUELL_RETURN_IF_ERROR(ExecuteRestore(op));
    RecomputeBlocked();
  }
  nlohmann::json files = nlohmann::json::array(), persistence = nlohmann::json::array();
  for (const auto& f : op["files"]) files.push_back({{"path", f["path"]}, {"sha256", f["sha256"]}});
  for (const auto& p : op["persistence"]) {
    persistence.push_back({{"kind", p["change"]["kind"]}, {"location", p["change"]["location"]}});
  }
  return nlohmann::json{{"quarantineActionId", id},
                        {"sha256", op["sha256"]},
                        {"filesRestored", std::move(files)},
                        {"persistenceRestored", std::move(persistence)}};
}

Result<nlohmann::json> FileQuarantine::Restore(const std::string& id) {
  std::lock_guard lock(op_mu_);
  return RestoreLocked(id);
}

Result<nlohmann::json> FileQuarantine::RestoreBySha256(const std::string& raw) {
  const std::string sha256 = Lower(raw);
  if (!IsHex(sha256, 64)) return InvalidArgument("Sha256 must be 64 hex digits");
  std::lock_guard lock(op_mu_);
  QUELL_ASSIGN_OR_RETURN(std::vector<std::string> names, ListFiles(OpsDir()));
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& name : names) {
    if (!name.ends_with(".json")) continue;
    const std::string id = name.substr(0, name.size() - 5);
    auto op = Load(id);
    if (!op.ok() || (*op)["sha256"] != sha256) continue;
    const std::string state = (*op)["state"].get<std::string>();
    if (state != "done" && state != "restoring") continue;
    QUELL_ASSIGN_OR_RETURN(nlohmann::json r, RestoreLocked(id));
    results.push_back(std::move(r));
  }
  if (results.empty()) return NotFound("no quarantined file with SHA-256 " + sha256);
  return nlohmann::json{{"sha256", sha256}, {"restored", std::move(results)}};
}

}  // namespace quell::agent::quarantine
