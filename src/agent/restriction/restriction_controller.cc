#include "agent/restriction/restriction_controller.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "agent/restriction/mount_table.h"
#include "common/files.h"
#include "common/logging.h"

namespace quell::agent {
namespace {

constexpr int kStateVersion = 1;

auto Log() { return Logger("agent.restriction"); }

// The mount id of the root mount ("/") in a mountinfo file; mount ids are unique across
// namespaces, and a new namespace gets copies with new ids.
Result<std::string> RootMountId(const std::string& path) {
  QUELL_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::istringstream in(text);
  std::string id, root_id;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string parent, devno, root, mount_point;
    fields >> id >> parent >> devno >> root >> mount_point;
    if (mount_point == "/") root_id = id;  // the last one is the one in force
  }
  if (root_id.empty()) return Internal("no root mount in " + path);
  return root_id;
}

Result<bool> SameMountNamespaceAsInit() {
  struct stat self {}, init {};
  if (stat("/proc/self/ns/mnt", &self) == 0 && stat("/proc/1/ns/mnt", &init) == 0) {
    return self.st_dev == init.st_dev && self.st_ino == init.st_ino;
  }
  // /proc/1/ns is unreadable without ptrace rights over PID 1 (e.g. in some VMs and
  // containers); /proc/1/mountinfo is world-readable.
  QUELL_ASSIGN_OR_RETURN(std::string mine, RootMountId("/proc/self/mountinfo"));
  QUELL_ASSIGN_OR_RETURN(std::string init_root, RootMountId("/proc/1/mountinfo"));
  return mine == init_root;
}

std::string ReadSmall(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Readlink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string UserName(uint32_t uid) {
  passwd pw{}, *out = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &out) == 0 && out != nullptr) return out->pw_name;
  return std::to_string(uid);
}

nlohmann::json UserAccount(uint32_t uid) {
  // S-1-22-1-<uid> is the conventional SID of a Unix user (as Samba maps them).
  return {{"accountName", UserName(uid)}, {"userSid", "S-1-22-1-" + std::to_string(uid)}};
}

// {"pid","exe","cmdline","uid","ppid"} from /proc; fields missing when the process is gone.
nlohmann::json DescribeProcessFromProc(pid_t pid) {
  nlohmann::json p = {{"pid", pid}};
  const std::string dir = "/proc/" + std::to_string(pid);
  p["exe"] = Readlink(dir + "/exe");
  std::string cmd = ReadSmall(dir + "/cmdline");
  while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
  for (char& c : cmd) if (c == '\0') c = ' ';
  p["cmdline"] = cmd;
  std::istringstream status(ReadSmall(dir + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("Uid:")) p["uid"] = std::stoul(line.substr(4));
    if (line.starts_with("PPid:")) p["ppid"] = std::stol(line.substr(5));
  }
  return p;
}

Result<std::pair<RestrictionMode, UnixMillis>> ParseState(const std::string& text) {
  try {
    const nlohmann::json doc = nlohmann::json::parse(text);
    if (doc.at("version").get<int>() != kStateVersion) {
      return InvalidArgument("unsupported state version " + doc.at("version").dump());
    }
    QUELL_ASSIGN_OR_RETURN(RestrictionMode mode,
                           ParseRestrictionMode(doc.at("mode").get<std::string>()));
    return std::make_pair(mode, doc.value("restrictedAt", UnixMillis{0}));
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(e.what());
  }
}

}  // namespace

std::string_view RestrictionModeName(RestrictionMode mode) {
  switch (mode) {
    case RestrictionMode::kEnforce: return "Enforce";
    case RestrictionMode::kAudit: return "Audit";
    case RestrictionMode::kNone: break;
  }
  return "None";
}

Result<RestrictionMode> ParseRestrictionMode(std::string_view name) {
  if (name == "Enforce") return RestrictionMode::kEnforce;
  if (name == "Audit") return RestrictionMode::kAudit;
  if (name == "None") return RestrictionMode::kNone;
  return InvalidArgument("restriction mode must be Enforce, Audit or None, not '" +
                         std::string(name) + "'");
}

RestrictionController::RestrictionController(ExecGate& gate, DetectionSink* sink,
                                             RestrictionOptions options)
    : gate_(gate), sink_(sink), options_(std::move(options)) {
  if (!options_.in_initial_mount_namespace) options_.in_initial_mount_namespace = SameMountNamespaceAsInit;
  if (!options_.describe_process) options_.describe_process = DescribeProcessFromProc;
}

RestrictionController::~RestrictionController() {
  std::lock_guard lock(mutex_);
  mode_ = RestrictionMode::kNone;
  if (gate_open_) CloseGate();
}

UnixMillis RestrictionController::Now() const {
  return (options_.clock ? *options_.clock : SystemClock::Instance()).Now();
}

Status RestrictionController::Persist(RestrictionMode mode) {
  nlohmann::json doc = {{"version", kStateVersion}, {"mode", RestrictionModeName(mode)}};
  if (mode != RestrictionMode::kNone) doc["restrictedAt"] = restricted_at_;
  else doc["releasedAt"] = Now();
  return WriteFileAtomic(options_.state_path, doc.dump(2) + "\n", 0600)
      .WithContext("persisting restriction state");
}

Status RestrictionController::MarkMounts() {
  Result<std::string> text = ReadFile(options_.mountinfo_path);
  if (!text.ok()) return text.status().WithContext("reading the mount table");
  size_t marked = 0;
  for (const std::string& mount_point : GuardedMountPoints(ParseMountInfo(*text))) {
    if (Status s = gate_.MarkMount(mount_point); !s.ok()) {
      Log()->warn("cannot guard mount {}: {}", mount_point, s.ToString());
      continue;
    }
    ++marked;
  }
  if (marked == 0) return FailedPrecondition("no mount could be guarded");
  std::lock_guard lock(stats_mutex_);
  stats_.marks = marked;
  return Status::Ok();
}

Status RestrictionController::CheckNamespace() const {
  if (!options_.require_private_mount_namespace) return Status::Ok();
  Result<bool> shared = options_.in_initial_mount_namespace();
  if (!shared.ok()) {
    return FailedPrecondition("restriction.require_private_mount_namespace is set and the "
                              "mount namespace cannot be checked: " +
                              shared.status().message());
  }
  if (*shared) {
    return FailedPrecondition(
        "restriction.require_private_mount_namespace is set but the agent runs in the "
        "initial mount namespace (/proc/self/ns/mnt == /proc/1/ns/mnt); refusing to "
        "guard execution on this machine's own mounts");
  }
  return Status::Ok();
}

void RestrictionController::StartWorker() {
  worker_ = std::jthread([this](std::stop_token stop) { Loop(stop); });
}

void RestrictionController::StopWorker() {
  if (worker_.joinable()) {
    worker_.request_stop();
    worker_.join();
  }
}

Status RestrictionController::OpenGate(PackageIndex packages) {
  QUELL_RETURN_IF_ERROR(CheckNamespace());
  ExecPolicyOptions popts{.allow_sha256 = options_.allow_sha256};
  if (int fd = open(options_.self_exe.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    if (auto key = KeyOfFd(fd); key.ok()) popts.self_key = *key;
    if (auto d = DigestFd(fd); d.ok()) popts.self_sha256 = d->sha256;
    close(fd);
  }
  policy_ = std::make_unique<ExecPolicy>(std::move(packages), std::move(popts));
  QUELL_RETURN_IF_ERROR(gate_.Open().WithContext("opening the exec gate"));
  gate_open_ = true;
  // The worker answers before the marks exist, so no exec waits on a thread not yet running.
  StartWorker();
  if (Status s = MarkMounts(); !s.ok()) {
    CloseGate();
    return s;
  }
  return Status::Ok();
}

void RestrictionController::CloseGate() {
  StopWorker();
  gate_.Close();  // releases every waiter the worker did not answer
  gate_open_ = false;
}

Status RestrictionController::Enable(RestrictionMode mode) {
  QUELL_RETURN_IF_ERROR(CheckNamespace());
  const auto load_start = std::chrono::steady_clock::now();
  QUELL_ASSIGN_OR_RETURN(PackageIndex packages, PackageIndex::Load(options_.dpkg_info_dir));
  Log()->info("package index: {} files in {} ms", packages.size(),
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - load_start).count());
  if (gate_open_) {
    // Open for indicators only: the pending execs wait in the kernel queue while the worker
    // is swapped, and the new worker answers them.
    StopWorker();
    policy_->ReplacePackages(std::move(packages));
    mode_ = mode;
    StartWorker();
    return Status::Ok();
  }
  mode_ = mode;
  if (Status s = OpenGate(std::move(packages)); !s.ok()) {
    mode_ = RestrictionMode::kNone;
    return s;
  }
  return Status::Ok();
}

void RestrictionController::Disable() {
  mode_ = RestrictionMode::kNone;
  if (gate_open_ && !indicator_gate_) CloseGate();
}

Status RestrictionController::SetIndicatorGate(bool on) {
  std::lock_guard lock(mutex_);
  if (on == indicator_gate_) return Status::Ok();
  if (on && !gate_open_) {
    QUELL_RETURN_IF_ERROR(OpenGate(PackageIndex()));
    Log()->info("exec gate open for file indicators (execution not restricted)");
  }
  indicator_gate_ = on;
  if (!on && gate_open_ && mode_.load() == RestrictionMode::kNone) {
    CloseGate();
    Log()->info("exec gate closed: no blocking file indicators and no restriction");
  }
  return Status::Ok();
}

bool RestrictionController::GateOpen() const {
  std::lock_guard lock(mutex_);
  return gate_open_;
}

Status RestrictionController::Restore() {
  std::lock_guard lock(mutex_);
  Result<std::string> text = ReadFile(options_.state_path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return Status::Ok();
    return text.status().WithContext("reading restriction state");
  }
  auto parsed = ParseState(*text);
  if (!parsed.ok()) {
    return Internal("restriction state " + options_.state_path +
                    " is unreadable: " + parsed.status().message());
  }
  auto [mode, at] = *parsed;
  if (mode == RestrictionMode::kNone) return Status::Ok();
  restricted_at_ = at;
  QUELL_RETURN_IF_ERROR(Enable(mode).WithContext("re-applying persisted restriction"));
  Log()->info("execution restriction restored: mode={} packageFiles={}",
              RestrictionModeName(mode), policy_->package_files());
  return Status::Ok();
}

Result<nlohmann::json> RestrictionController::Restrict(RestrictionMode mode) {
  if (mode == RestrictionMode::kNone) return InvalidArgument("restriction mode None is an unrestrict");
  std::lock_guard lock(mutex_);
  const RestrictionMode previous = mode_;
  const UnixMillis previous_at = restricted_at_;
  if (previous == RestrictionMode::kNone) {
    restricted_at_ = Now();
    QUELL_RETURN_IF_ERROR(Enable(mode));
  } else {
    mode_ = mode;  // switching Enforce <-> Audit needs no new marks
  }
  if (Status s = Persist(mode); !s.ok()) {
    if (previous == RestrictionMode::kNone) Disable();
    else mode_ = previous;
    restricted_at_ = previous_at;
    return s;
  }
  Log()->info("execution restricted: mode={} (was {})", RestrictionModeName(mode),
              RestrictionModeName(previous));
  std::lock_guard slock(stats_mutex_);
  return nlohmann::json{{"restrictionMode", RestrictionModeName(mode)},
                        {"previousRestrictionMode", RestrictionModeName(previous)},
                        {"restrictedAt", FormatIso8601(restricted_at_)},
                        {"guardedMounts", stats_.marks},
                        {"packageFiles", policy_ ? policy_->package_files() : 0},
                        {"allowList", policy_ ? policy_->allow_list_size() : 0}};
}

Result<nlohmann::json> RestrictionController::Unrestrict() {
  std::lock_guard lock(mutex_);
  const RestrictionMode previous = mode_;
  // Persist first: if the disk cannot record it, the restriction stays as it is (kernel,
  // memory and disk agree) rather than coming back unexpectedly at the next start.
  QUELL_RETURN_IF_ERROR(Persist(RestrictionMode::kNone));
  Disable();
  Log()->info("execution restriction removed (was {})", RestrictionModeName(previous));
  return nlohmann::json{{"restrictionMode", "None"},
                        {"previousRestrictionMode", RestrictionModeName(previous)},
                        {"releasedAt", FormatIso8601(Now())}};
}

RestrictionMode RestrictionController::Current() const { return mode_.load(); }

RestrictionController::Stats RestrictionController::GetStats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void RestrictionController::Loop(std::stop_token stop) {
  std::string last_error;
  while (!stop.stop_requested()) {
    Result<ExecWait> waited = gate_.Wait(options_.wait_slice);
    if (!waited.ok()) {
      if (waited.status().message() != last_error) {
        Log()->error("exec gate: {}", waited.status().ToString());
        last_error = waited.status().message();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    last_error.clear();
    for (const ExecRequest& r : waited->requests) Handle(r);
    if (waited->overflow) {
      std::lock_guard lock(stats_mutex_);
      ++stats_.overflows;
    }
    if (waited->mounts_changed) {
      // New mounts (e.g. a bind mount over a package path) get their marks here.
      if (Status s = MarkMounts(); !s.ok()) Log()->warn("re-marking mounts: {}", s.ToString());
    }
  }
}

void RestrictionController::Handle(const ExecRequest& request) {
  const RestrictionMode mode = mode_.load();
  Result<ExecVerdict> verdict = policy_->Evaluate(request.fd);
  bool allow = true;
  if (!verdict.ok()) {
    // Fail open: an exec the agent cannot judge is allowed, counted and logged.
    Log()->warn("cannot evaluate exec by pid {}: {}; allowed", request.pid,
                verdict.status().ToString());
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.errors_allowed;
    }
    if (Status s = gate_.Respond(request, true); !s.ok()) {
      std::lock_guard lock(stats_mutex_);
      ++stats_.respond_errors;
    }
    return;
  }
  std::optional<IndicatorMatch> indicator;
  if (options_.match_file_indicator && !verdict->sha256.empty()) {
    indicator = options_.match_file_indicator(request.fd, verdict->sha256, verdict->sha1,
                                              verdict->md5);
  }
  const bool restricted = mode != RestrictionMode::kNone;
  bool approved = verdict->approved || !restricted;
  bool indicator_block = false;
  if (indicator) {
    switch (indicator->action) {
      case IndicatorAction::kAllowed:
        approved = true;  // runs under restriction too
        break;
      case IndicatorAction::kBlock:
      case IndicatorAction::kBlockAndRemediate:
        indicator_block = true;
        break;
      case IndicatorAction::kAudit:
        break;
    }
  }
  allow = !indicator_block && (approved || mode != RestrictionMode::kEnforce);
  // Evidence is collected while the process still waits in execve.
  if (indicator && indicator->action != IndicatorAction::kAllowed && indicator->generate_alert) {
    ReportIndicator(*verdict, *indicator, request.pid, indicator_block);
  }
  if (!indicator_block && !approved) Report(*verdict, request.pid, !allow);
  {
    // Counted before answering, so whoever sees the exec's outcome also sees the count.
    std::lock_guard lock(stats_mutex_);
    if (verdict->cached) ++stats_.cache_hits;
    if (indicator) {
      if (indicator_block) ++stats_.indicator_blocked;
      else if (indicator->action == IndicatorAction::kAudit) ++stats_.indicator_audited;
      else ++stats_.indicator_allowed;
    }
    if (!allow) ++stats_.denied;
    else if (approved) ++stats_.allowed;
    else ++stats_.audited;
  }
  if (Status s = gate_.Respond(request, allow); !s.ok()) {
    std::lock_guard lock(stats_mutex_);
    ++stats_.respond_errors;
  }
  if (indicator_block && indicator->action == IndicatorAction::kBlockAndRemediate &&
      options_.remediate) {
    options_.remediate(BlockedFile{.path = verdict->path,
                                   .sha256 = verdict->sha256,
                                   .sha1 = verdict->sha1,
                                   .md5 = verdict->md5,
                                   .pid = request.pid,
                                   .indicator = *indicator});
  }
}

bool RestrictionController::Suppressed(const std::string& key, UnixMillis now) {
  if (auto it = last_report_.find(key);
      it != last_report_.end() && now - it->second < options_.report_suppression.count()) {
    std::lock_guard lock(stats_mutex_);
    ++stats_.reports_suppressed;
    return true;
  }
  last_report_[key] = now;
  if (last_report_.size() > 4096) last_report_.clear();
  return false;
}

void RestrictionController::ReportIndicator(const ExecVerdict& v, const IndicatorMatch& m,
                                            pid_t pid, bool blocked) {
  const UnixMillis now = Now();
  Log()->warn("{} exec of {} (sha256 {}) by pid {}: indicator {} ({} {})",
              blocked ? "blocked" : "audit:", v.path, v.sha256, pid, m.id,
              IndicatorTypeName(m.type), IndicatorActionName(m.action));
  if (Suppressed("indicator:" + m.id + ":" + v.sha256, now) || sink_ == nullptr) return;
  const std::string name = m.title.empty() ? "indicator " + m.id : m.title;
  Detection d;
  d.detector_id = std::string(kFileIndicatorDetector);
  d.title = (blocked ? "Execution blocked by indicator: " : "File indicator matched: ") +
            BaseName(v.path);
  d.description = "Execution of " + v.path + " (pid " + std::to_string(pid) + ") " +
                  (blocked ? "was denied" : "was allowed and reported") + ": its " +
                  std::string(IndicatorTypeName(m.type)) + " " + m.value +
                  " matches the custom indicator '" + name + "' (id " + m.id + ", action " +
                  std::string(IndicatorActionName(m.action)) + ").";
  d.severity = m.severity.empty() ? "Medium" : m.severity;
  d.category = "Malware";
  d.detection_source = "CustomTi";
  d.threat_name = name;
  d.mitre_techniques = {"T1204.002"};
  d.time = now;
  d.evidence = Evidence(v, pid, blocked, "policyViolator", "malicious");
  d.dedup_key = std::string(kFileIndicatorDetector) + ":" + m.id + ":" + v.sha256;
  sink_->Report(std::move(d));
  std::lock_guard lock(stats_mutex_);
  ++stats_.reports;
}

nlohmann::json RestrictionController::Evidence(const ExecVerdict& v, pid_t pid, bool blocked,
                                               const std::string& role,
                                               const std::string& verdict) const {
  nlohmann::json proc = options_.describe_process(pid);
  const pid_t ppid = proc.value("ppid", 0);
  nlohmann::json parent = ppid > 0 ? options_.describe_process(ppid) : nlohmann::json::object();
  const uint32_t uid = proc.value("uid", 0u);
  struct stat st {};
  std::string owner;
  if (!v.path.empty() && stat(v.path.c_str(), &st) == 0) owner = UserName(st.st_uid);
  const std::string status = blocked ? "blocked" : "detected";

  nlohmann::json file_details = {{"fileName", BaseName(v.path)},
                                 {"filePath", v.path},
                                 {"sha256", v.sha256},
                                 {"fileSize", v.size},
                                 {"fileOwner", owner}};
  if (!v.sha1.empty()) file_details["sha1"] = v.sha1;
  if (!v.md5.empty()) file_details["md5"] = v.md5;
  if (!v.package.empty()) file_details["package"] = v.package;
  const std::string exe = proc.value("exe", "");
  const std::string parent_exe = parent.value("exe", "");
  nlohmann::json evidence = nlohmann::json::array();
  evidence.push_back({{"@odata.type", "#microsoft.graph.security.fileEvidence"},
                      {"roles", {role}},
                      {"verdict", verdict},
                      {"remediationStatus", blocked ? "blocked" : "none"},
                      {"detectionStatus", status},
                      {"fileDetails", file_details}});
  evidence.push_back({{"@odata.type", "#microsoft.graph.security.processEvidence"},
                      {"roles", {"contextual"}},
                      {"verdict", "unknown"},
                      {"remediationStatus", "none"},
                      {"detectionStatus", status},
                      {"processId", pid},
                      {"processCommandLine", proc.value("cmdline", "")},
                      {"imageFile", {{"fileName", BaseName(exe)}, {"filePath", exe}}},
                      {"parentProcessId", ppid},
                      {"parentProcessImageFile",
                       {{"fileName", BaseName(parent_exe)}, {"filePath", parent_exe}}},
                      {"parentProcessCommandLine", parent.value("cmdline", "")},
                      {"userAccount", UserAccount(uid)}});
  evidence.push_back({{"@odata.type", "#microsoft.graph.security.userEvidence"},
                      {"roles", {"contextual"}},
                      {"verdict", "unknown"},
                      {"remediationStatus", "none"},
                      {"userAccount", UserAccount(uid)}});
  return evidence;
}

void RestrictionController::Report(const ExecVerdict& v, pid_t pid, bool blocked) {
  const UnixMillis now = Now();
  Log()->warn("{} exec of {} (sha256 {}, {}) by pid {}", blocked ? "blocked" : "audit: would block",
              v.path, v.sha256.empty() ? "-" : v.sha256, v.reason, pid);
  const std::string key = v.sha256.empty() ? v.path : v.sha256;
  if (Suppressed(key, now) || sink_ == nullptr) return;
  nlohmann::json proc = options_.describe_process(pid);
  const std::string exe = proc.value("exe", "");
  const uint32_t uid = proc.value("uid", 0u);
  nlohmann::json evidence = Evidence(v, pid, blocked, "policyViolator", "suspicious");

  Detection d;
  d.detector_id = std::string(kExecRestrictionDetector);
  d.title = (blocked ? "Execution blocked: " : "Execution would be blocked (audit): ") +
            BaseName(v.path);
  d.description = "Execution of " + v.path + " by " + (exe.empty() ? "pid " + std::to_string(pid) : exe) +
                  " (pid " + std::to_string(pid) + ", user " + UserName(uid) + ") " +
                  (blocked ? "was denied" : "would be denied") +
                  " by the code execution restriction: " + v.reason + ".";
  d.severity = blocked ? "Medium" : "Low";
  d.category = "Execution";
  d.detection_source = "ExecutionRestriction";
  d.threat_name = "UnapprovedExecutable";
  d.mitre_techniques = {"T1204.002"};
  d.time = now;
  d.evidence = std::move(evidence);
  d.dedup_key = std::string(kExecRestrictionDetector) + ":" + key;
  sink_->Report(std::move(d));
  std::lock_guard lock(stats_mutex_);
  ++stats_.reports;
}

}  // namespace quell::agent
