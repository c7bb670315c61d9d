#include "agent/app/agent.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/actions/builtin_actions.h"
#include "agent/app/action_executor.h"
#include "agent/app/inventory.h"
#include "agent/channel/artifact_uploader.h"
#include "agent/channel/backoff.h"
#include "agent/channel/library_downloader.h"
#include "agent/channel/enrollment.h"
#include "agent/channel/server_channel.h"
#include "agent/detect/spooled_detection_sink.h"
#include "agent/indicators/allowed_file_filter.h"
#include "agent/indicators/dns_enforcement.h"
#include "agent/indicators/dns_filter.h"
#include "agent/indicators/dns_steering.h"
#include "agent/indicators/file_indicator_match.h"
#include "agent/indicators/indicator_enforcer.h"
#include "agent/indicators/indicator_store.h"
#include "agent/indicators/ip_blocklist.h"
#include "agent/indicators/nft_runner.h"
#include "agent/isolation/isolation_controller.h"
#include "agent/live/live_remediation.h"
#include "agent/live/live_session_host.h"
#include "agent/platform/exec_gate_fanotify.h"
#include "agent/platform/nftables_firewall.h"
#include "agent/quarantine/file_quarantine.h"
#include "agent/quarantine/remediation_queue.h"
#include "agent/restriction/restriction_controller.h"
#include "agent/sensors/executable_sightings.h"
#include "agent/sensors/written_file_watch.h"
#include "agent/state/action_journal.h"
#include "agent/state/identity_store.h"
#include "agent/state/spool.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/pki.h"

namespace quell::agent {

namespace {

auto Log() { return Logger("agent"); }

// How long a finished action is remembered; far beyond the server's redelivery window.
constexpr auto kJournalRetention = std::chrono::hours(24 * 30);

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

// The pinned CA, checked to be a certificate now rather than failing every TLS handshake later.
Result<std::string> ReadPinnedCa(const std::string& path) {
  auto pem = ReadFile(path);
  if (!pem.ok()) return pem.status().WithContext("ca_cert");
  if (auto info = pki::InspectCertificate(*pem); !info.ok()) {
    return InvalidArgument("ca_cert " + path + " is not a PEM certificate: " +
                           info.status().message());
  }
  return pem;
}

// Bridges the channel's requests to the executor, which is created after the channel (the
// executor sends through the channel, the channel delivers to the executor).
class ExecutorHandler final : public ServerChannel::Handler {
 public:
  void OnActionRequest(const quell::v1::ActionRequest& request) override {
    executor->Submit(request);
  }
  void OnCancelAction(const quell::v1::CancelAction& cancel) override {
    executor->Cancel(cancel.action_id());
  }
  void OnIndicatorDelta(const quell::v1::IndicatorDelta& delta) override {
    if (on_indicator_delta) on_indicator_delta(delta);
  }
  void OnLiveCommand(const quell::v1::LiveCommand& command) override {
    if (live_sessions != nullptr) {
      live_sessions->OnCommand(command);
      return;
    }
    // No live response here: the server still gets an answer instead of waiting.
    quell::v1::AgentMessage m;
    m.mutable_live_output()->set_session_id(command.session_id());
    m.mutable_live_output()->set_command_id(command.command_id());
    m.mutable_live_output()->set_done(true);
    m.mutable_live_output()->set_status("Failed");
    m.mutable_live_output()->set_error("no open session " + command.session_id() +
                                       " on this device");
    if (sink != nullptr) sink->Send(std::move(m));
  }
  void OnLiveCancel(const quell::v1::LiveCancel& cancel) override {
    if (live_sessions != nullptr) live_sessions->OnCancel(cancel);
  }
  ActionExecutor* executor = nullptr;
  live::LiveSessionHost* live_sessions = nullptr;
  MessageSink* sink = nullptr;
  std::function<void(const quell::v1::IndicatorDelta&)> on_indicator_delta;
};

void SleepFor(std::stop_token stop, std::chrono::milliseconds delay) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, stop, delay, [] { return false; });
}

}  // namespace

// Declared in teardown order: later members are destroyed first.
struct Agent::Parts {
  ServerEndpoint endpoint;
  std::unique_ptr<NftablesFirewall> firewall;
  std::unique_ptr<IsolationController> isolation;
  std::unique_ptr<Spool> spool;
  std::unique_ptr<SpooledDetectionSink> detections;  // before every detector that reports
  std::unique_ptr<AllowedFileFilter> allowed_filter;  // in front of `detections`
  std::unique_ptr<IndicatorStore> indicators;  // before everything that consults it
  // Hash + certificate matching over `indicators`; shared by the exec gate and allowed_filter.
  std::shared_ptr<FileIndicatorMatcher> file_matcher;
  // Opened before the exec gate: it finishes interrupted operations, and the gate consults
  // its quarantined hashes. nullptr when it could not be opened (logged; actions not offered).
  std::unique_ptr<quarantine::FileQuarantine> quarantine;
  std::unique_ptr<quarantine::RemediationQueue> remediation;  // BlockAndRemediate indicators
  std::unique_ptr<LibNftRunner> indicator_nft;
  std::unique_ptr<IpBlocklist> ip_blocklist;
  // DomainName/Url indicators. `dns_enforcement` (destroyed first) removes the steering table
  // and stops the filter when the agent stops: no query is steered to a filter that is gone.
  std::unique_ptr<DnsFilter> dns_filter;
  std::unique_ptr<DnsSteering> dns_steering;
  std::unique_ptr<DnsEnforcement> dns_enforcement;
  std::unique_ptr<FanotifyExecGate> exec_gate;
  std::unique_ptr<RestrictionController> restriction;  // answers the exec_gate's events
  std::unique_ptr<IndicatorEnforcer> indicator_enforcer;  // drives restriction + ip_blocklist
  // BlockAndRemediate: called (on the exec gate's thread; must only queue work) after an
  // exec was denied by such an indicator. Unset: the file is only blocked, and that is logged.
  std::function<void(const BlockedFile&)> remediate_file;
  // BlockAndRemediate on files as they are written (on while such an indicator exists).
  std::unique_ptr<sensors::FanotifyWrittenFileSource> written_source;
  std::unique_ptr<sensors::WrittenFileWatch> written_watch;  // uses `remediation`
  std::unique_ptr<ActionJournal> journal;
  std::optional<CollectPackageOptions> collect;  // CollectInvestigationPackage's settings
  std::optional<LiveResponseOptions> live;       // LiveResponse's; unset when its dir failed
  // Interactive live response: `remediation` (nullptr when its journal could not be read:
  // remediate/undo are refused) is used by the sessions' shells; both outlive the executor,
  // whose LiveResponse actions run the sessions.
  std::unique_ptr<live::LiveRemediation> live_remediation;
  std::unique_ptr<live::LiveSessionHost> live_sessions;
  ActionRegistry registry;
  Identity identity;
  ExecutorHandler handler;
  std::unique_ptr<ServerChannel> channel;
  std::unique_ptr<ActionExecutor> executor;
};

Agent::Agent(AgentConfig config) : config_(std::move(config)), parts_(std::make_unique<Parts>()) {}

Agent::~Agent() {
  // The exec gate hands blocked files to the remediation queue, whose outcomes go out through
  // the channel: stop the gate, then the queue, while everything they use still exists.
  parts_->restriction.reset();
  parts_->written_watch.reset();
  parts_->remediation.reset();
}

Status Agent::Run(std::stop_token stop) {
  Log()->info("quell-agent {} starting; server {}, state in {}", QUELL_VERSION, config_.server,
              config_.state_dir);
  QUELL_RETURN_IF_ERROR(PrepareStateDir());
  QUELL_RETURN_IF_ERROR(RestoreIsolation());
  QUELL_RETURN_IF_ERROR(OpenState());
  QUELL_RETURN_IF_ERROR(LoadOrEnroll(stop));
  if (!stop.stop_requested()) Serve(stop);
  Log()->info("quell-agent stopped");
  return Status::Ok();
}

Status Agent::PrepareStateDir() {
  return MakeDirs(config_.state_dir, 0700).WithContext("state_dir");
}

Status Agent::RestoreIsolation() {
  QUELL_ASSIGN_OR_RETURN(parts_->firewall, NftablesFirewall::Create());
  parts_->isolation = std::make_unique<IsolationController>(
      *parts_->firewall, IsolationOptions{
                             .state_path = config_.state_dir + "/isolation.json",
                             .server_host = config_.server_host,
                             .server_port = config_.server_port,
                             .selective_allow = config_.isolation.selective_allow,
                         });
  // Fail closed: if the persisted isolation cannot be re-applied, do not go online.
  QUELL_RETURN_IF_ERROR(parts_->isolation->Restore().WithContext("restore isolation"));
  Log()->info("isolation: {}", IsolationTypeName(parts_->isolation->Current()));
  return Status::Ok();
}

Status Agent::OpenState() {
  QUELL_ASSIGN_OR_RETURN(parts_->spool, Spool::Open(config_.state_dir + "/spool"));
  parts_->detections =
      std::make_unique<SpooledDetectionSink>(*parts_->spool, SystemClock::Instance());
  QUELL_RETURN_IF_ERROR(RestoreIndicatorStore());
  OpenQuarantine();
  RestoreRestriction();
  RestoreIndicatorEnforcement();
  QUELL_ASSIGN_OR_RETURN(parts_->journal, ActionJournal::Open(config_.state_dir + "/actions",
                                                              SystemClock::Instance()));
  const auto retention = std::chrono::duration_cast<std::chrono::milliseconds>(kJournalRetention);
  if (Status s = parts_->journal->PruneFinishedBefore(SystemClock::Instance().Now() -
                                                      retention.count());
      !s.ok()) {
    Log()->warn("cannot prune the action journal: {}", s.ToString());
  }
  // A scan also matches every file it reads against the file indicators (hashes, certificates).
  ScanIndicatorHooks scan_indicators{
      .match_file = [matcher = parts_->file_matcher](const FileToMatch& f) {
        return matcher->Match(f);
      },
      .version = [store = parts_->indicators.get()] { return store->version(); },
  };
  if (quarantine::RemediationQueue* q = parts_->remediation.get()) {
    scan_indicators.remediate = [q](const std::string& sha256, const std::string& path,
                                    const IndicatorMatch& m) {
      q->Enqueue({.sha256 = sha256, .path = path, .indicator_id = m.id, .seen = "scan"});
    };
  }
  parts_->collect = CollectPackageOptions{
      .work_dir = config_.state_dir + "/collect",
      .computer_name = config_.computer_name,
      .limits = {.max_artifact_bytes = config_.collect.max_artifact_bytes,
                 .max_total_bytes = config_.collect.max_total_bytes,
                 .time_limit = std::chrono::seconds(config_.collect.time_limit_seconds),
                 .command_timeout = std::chrono::seconds(config_.collect.command_timeout_seconds)},
  };
  // Files put on the device by live response do not outlive the agent.
  if (Status s = PrepareLiveWorkDir(config_.state_dir + "/live"); s.ok()) {
    const std::string work_dir = config_.state_dir + "/live";
    parts_->live = LiveResponseOptions{.work_dir = work_dir};
    // Remediation works where the quarantine does (root, proc_root, use_systemctl).
    auto remediation = live::LiveRemediation::Open(
        {.journal_path = work_dir + "/kept/remediations.json",
         .persistence = {.root = config_.quarantine.root,
                         .use_systemctl = config_.quarantine.use_systemctl},
         .proc_root = config_.quarantine.proc_root,
         .quarantine = parts_->quarantine.get()});
    if (remediation.ok()) {
      parts_->live_remediation = std::move(*remediation);
    } else {
      Log()->error("live response remediation unavailable: {}", remediation.status().ToString());
    }
    parts_->live_sessions = std::make_unique<live::LiveSessionHost>(live::LiveShellOptions{
        .work_dir = work_dir,
        .send = [this](auto&&... args) { return SendArtifact(args...); },
        .fetch = [this](auto&&... args) { return FetchLibraryFile(args...); },
        .remediation = parts_->live_remediation.get(),
    });
  } else {
    Log()->error("live response unavailable (LiveResponse will not be offered): {}",
                 s.ToString());
  }
  RegisterBuiltinActions(parts_->registry,
                         BuiltinActionDeps{.isolation = parts_->isolation.get(),
                                           .detections = parts_->allowed_filter.get(),
                                           .scan = &config_.scan,
                                           .restriction = parts_->restriction.get(),
                                           .quarantine = parts_->quarantine.get(),
                                           .scan_indicators = std::move(scan_indicators),
                                           .collect = &*parts_->collect,
                                           .send_artifact = [this](auto&&... args) {
                                             return SendArtifact(args...);
                                           },
                                           .live = parts_->live ? &*parts_->live : nullptr,
                                           .fetch_library = [this](auto&&... args) {
                                             return FetchLibraryFile(args...);
                                           },
                                           .live_sessions = parts_->live_sessions.get()});
  for (const ActionSpec* spec : parts_->registry.Specs()) {
    Log()->debug("action {} (undo: {}, risk {})", spec->type,
                 spec->undo_type.empty() ? "-" : spec->undo_type, spec->risk);
  }
  QUELL_ASSIGN_OR_RETURN(parts_->endpoint.ca_pem, ReadPinnedCa(config_.ca_cert));
  parts_->endpoint.target = config_.server;
  parts_->endpoint.server_name = config_.server_name;
  return Status::Ok();
}

void Agent::OpenQuarantine() {
  const AgentConfig::Quarantine& q = config_.quarantine;
  auto opened = quarantine::FileQuarantine::Open(
      {.state_dir = config_.state_dir,
       .root = q.root,
       .proc_root = q.proc_root,
       .use_systemctl = q.use_systemctl,
       .search_quick_scan_locations = q.search_quick_scan_locations,
       .max_file_bytes = q.max_file_bytes},
      {.on_blocked_changed =
           [this] {
             // Quarantined hashes need the exec gate; the enforcer opens or closes it.
             if (parts_->indicator_enforcer) (void)parts_->indicator_enforcer->Apply();
           }});
  if (!opened.ok()) {
    Log()->error("quarantine unavailable (StopAndQuarantineFile will not be offered): {}",
                 opened.status().ToString());
    return;
  }
  parts_->quarantine = std::move(*opened);
  parts_->remediation = std::make_unique<quarantine::RemediationQueue>(
      *parts_->quarantine, SystemClock::Instance(),
      [this](const quarantine::RemediationRequest& r, const Result<nlohmann::json>& outcome) {
        quell::v1::AgentMessage notice;
        auto* n = notice.mutable_notice();
        n->set_kind("IndicatorRemediation");
        n->set_time_unix_ms(SystemClock::Instance().Now());
        if (outcome.ok()) {
          n->set_message("BlockAndRemediate indicator " + r.indicator_id + ": " + r.path +
                         " (seen: " + r.seen + ") stopped and quarantined: " + outcome->dump());
        } else {
          n->set_message("BlockAndRemediate indicator " + r.indicator_id + ": " + r.path +
                         " (seen: " + r.seen + ") could not be quarantined: " +
                         outcome.status().ToString());
        }
        Log()->warn("{}", n->message());
        if (parts_->channel) {
          if (Status s = parts_->channel->SendDurable(std::move(notice)); !s.ok()) {
            Log()->error("cannot spool the remediation notice: {}", s.ToString());
          }
        }
      });
  parts_->remediate_file = [this](const BlockedFile& file) {
    parts_->remediation->Enqueue(
        {.sha256 = file.sha256, .path = file.path, .indicator_id = file.indicator.id});
  };
}

void Agent::RestoreRestriction() {
  parts_->exec_gate = std::make_unique<FanotifyExecGate>();
  parts_->restriction = std::make_unique<RestrictionController>(
      *parts_->exec_gate, parts_->allowed_filter.get(),
      RestrictionOptions{
          .state_path = config_.state_dir + "/restriction.json",
          .allow_sha256 = config_.restriction.allow_sha256,
          .require_private_mount_namespace = config_.restriction.require_private_mount_namespace,
          .match_file_indicator =
              [matcher = parts_->file_matcher, q = parts_->quarantine.get()](
                  int fd, const std::string& sha256, const std::string& sha1,
                  const std::string& md5) {
                std::optional<IndicatorMatch> m =
                    matcher->Match({.fd = fd, .sha256 = sha256, .sha1 = sha1, .md5 = md5});
                // A hash indicator outranks quarantine; a certificate one does not.
                if ((m && m->type != IndicatorType::kCertificateThumbprint) || q == nullptr ||
                    !q->Contains(sha256)) {
                  return m;
                }
                // A quarantined file stays blocked wherever a copy of it turns up.
                return std::optional<IndicatorMatch>(IndicatorMatch{
                    .id = "quarantine",
                    .type = IndicatorType::kFileSha256,
                    .value = sha256,
                    .action = IndicatorAction::kBlock,
                    .severity = "High",
                    .title = "Execution of a quarantined file",
                    .generate_alert = true});
              },
          .remediate =
              [this](const BlockedFile& file) {
                if (parts_->remediate_file) {
                  parts_->remediate_file(file);
                  return;
                }
                Log()->warn("BlockAndRemediate indicator {} blocked {}; no remediation is "
                            "available in this agent, the file stays blocked",
                            file.indicator.id, file.path);
              },
      });
  // Before any connection, like isolation. Unlike isolation this does not stop the agent: a
  // restriction that cannot be re-applied leaves execution unrestricted, and staying online
  // lets the operator see the error and act.
  if (Status s = parts_->restriction->Restore(); !s.ok()) {
    Log()->error("restore execution restriction: {}", s.ToString());
  }
  Log()->info("execution restriction: {}", RestrictionModeName(parts_->restriction->Current()));
}

Status Agent::RestoreIndicatorStore() {
  QUELL_ASSIGN_OR_RETURN(parts_->indicators,
                         IndicatorStore::Open({.dir = config_.state_dir + "/indicators"}));
  IndicatorStore* store = parts_->indicators.get();
  parts_->file_matcher = std::make_shared<FileIndicatorMatcher>(
      [store](const std::function<void(const IndicatorSet&)>& fn) { store->Read(fn); });
  parts_->allowed_filter = std::make_unique<AllowedFileFilter>(
      *parts_->detections,
      [matcher = parts_->file_matcher](const FileToMatch& f) { return matcher->Match(f); });
  return Status::Ok();
}

void Agent::RestoreIndicatorEnforcement() {
  Parts& p = *parts_;
  IndicatorStore* store = p.indicators.get();
  if (auto nft = LibNftRunner::Create(); nft.ok()) {
    p.indicator_nft = std::move(*nft);
    p.ip_blocklist = std::make_unique<IpBlocklist>(
        *p.indicator_nft, p.allowed_filter.get(),
        IpBlocklistOptions{.indicator_for = [store](const std::string& cidr) {
          std::optional<IndicatorMatch> m;
          store->Read([&](const IndicatorSet& set) { m = set.FindIpRange(cidr); });
          return m;
        }});
    StartDnsFilter();
  } else {
    Log()->error("IP and domain indicators cannot be enforced: {}", nft.status().ToString());
  }
  StartWrittenFileWatch();
  p.indicator_enforcer = std::make_unique<IndicatorEnforcer>(
      *store, IndicatorEnforcerOptions{
                  .set_file_gate = [this](bool on) { return parts_->restriction->SetIndicatorGate(on); },
                  .other_file_blocks =
                      [q = p.quarantine.get()] { return q ? q->Sha256s().size() : size_t{0}; },
                  .ip_blocklist = p.ip_blocklist.get(),
                  .set_written_file_watch =
                      p.written_watch == nullptr
                          ? std::function<Status(bool)>()
                          : [w = p.written_watch.get()](bool on) { return w->SetActive(on); },
                  .set_dns_filter =
                      p.dns_enforcement == nullptr
                          ? std::function<Status(bool)>()
                          : [d = p.dns_enforcement.get()](bool on) { return d->Set(on); },
              });
  IndicatorEnforcer* enforcer = p.indicator_enforcer.get();
  store->OnChange([enforcer] { (void)enforcer->Apply(); });
  // Before any connection, like isolation and restriction; a failure is logged and retried
  // by the maintenance tick rather than keeping the agent offline.
  if (Status s = enforcer->Apply(); !s.ok()) Log()->error("indicator enforcement: {}", s.ToString());
  Log()->info("indicators: version {} ({} active)", store->version(), store->size());
}

void Agent::StartDnsFilter() {
  Parts& p = *parts_;
  p.dns_steering = std::make_unique<DnsSteering>(*p.indicator_nft);
  if (!config_.dns_filter.enabled) {
    // A table left by an earlier run (killed, or enabled then) must not steer DNS to nothing.
    if (Status s = p.dns_steering->Remove(); !s.ok()) {
      Log()->error("DNS filter: cannot remove the steering table: {}", s.ToString());
    }
    Log()->info("DNS filter disabled (dns_filter.enabled: false): domain and URL indicators "
                "are not enforced");
    return;
  }
  IndicatorStore* store = p.indicators.get();
  p.dns_filter = std::make_unique<DnsFilter>(
      p.allowed_filter.get(),
      DnsFilterOptions{
          .port = static_cast<uint16_t>(config_.dns_filter.port),
          .upstream_timeout = std::chrono::milliseconds(config_.dns_filter.upstream_timeout_ms),
          .match = [store](std::string_view name) { return store->MatchDomain(name); },
      });
  p.dns_enforcement = std::make_unique<DnsEnforcement>(*p.dns_filter, *p.dns_steering);
}

void Agent::StartWrittenFileWatch() {
  Parts& p = *parts_;
  if (!config_.quarantine.watch_written_files || p.remediation == nullptr) return;
  p.written_source = std::make_unique<sensors::FanotifyWrittenFileSource>();
  p.written_watch = std::make_unique<sensors::WrittenFileWatch>(
      *p.written_source, p.allowed_filter.get(),
      sensors::WrittenFileWatchOptions{
          .max_file_bytes = config_.quarantine.written_file_max_bytes,
          .skip_dirs = {config_.state_dir},
          .require_private_mount_namespace = config_.restriction.require_private_mount_namespace,
          .match_file = [matcher = p.file_matcher](const FileToMatch& f) {
            return matcher->Match(f);
          },
          .remediate =
              [q = p.remediation.get()](const sensors::WrittenFileHit& hit) {
                q->Enqueue({.sha256 = hit.hashes.sha256,
                            .path = hit.path,
                            .indicator_id = hit.indicator.id,
                            .seen = "written"});
              },
      });
}

void Agent::OnIndicatorDelta(const quell::v1::IndicatorDelta& delta) {
  Parts& p = *parts_;
  auto outcome = p.indicators->Apply(delta);
  if (!outcome.ok()) {
    // Not acknowledged: the server resends after the next Hello, which carries the old version.
    Log()->error("device={} cannot apply indicator delta {} -> {}: {}", p.identity.device_id,
                 delta.from_version(), delta.to_version(), outcome.status().ToString());
    return;
  }
  if (!outcome->complete && !outcome->out_of_sync) return;  // more chunks to come
  if (outcome->complete) {
    Log()->info("device={} indicators at version {} (+{} upserted, {} removed, {} rejected)",
                p.identity.device_id, outcome->version, outcome->upserts, outcome->removals,
                outcome->rejected);
  }
  quell::v1::AgentMessage ack;
  ack.mutable_indicator_ack()->set_version(outcome->version);
  p.channel->Send(std::move(ack));
}

void Agent::TickIndicators(std::stop_token stop) {
  while (!stop.stop_requested()) {
    SleepFor(stop, std::chrono::seconds(1));
    if (stop.stop_requested()) break;
    parts_->indicator_enforcer->Tick();
  }
}

Status Agent::LoadOrEnroll(std::stop_token stop) {
  IdentityStore store(config_.state_dir + "/identity");
  QUELL_ASSIGN_OR_RETURN(std::optional<Identity> existing, store.Load());
  if (existing) {
    parts_->identity = std::move(*existing);
    Log()->info("device={} enrolled", parts_->identity.device_id);
    return Status::Ok();
  }

  std::string token = config_.enrollment_token;
  if (!config_.enrollment_token_file.empty()) {
    QUELL_ASSIGN_OR_RETURN(token, ReadFile(config_.enrollment_token_file));
    token = Trim(std::move(token));
  }
  if (token.empty()) {
    return FailedPrecondition("not enrolled yet and no enrollment_token or enrollment_token_file "
                              "is configured");
  }

  Backoff backoff(std::chrono::milliseconds(config_.reconnect_initial_ms),
                  std::chrono::milliseconds(config_.reconnect_max_ms), Backoff::SystemRandom());
  while (!stop.stop_requested()) {
    auto identity = Enroll(parts_->endpoint, token, CollectInventory(config_.computer_name));
    if (identity.ok()) {
      QUELL_RETURN_IF_ERROR(store.Save(*identity).WithContext("save identity"));
      parts_->identity = std::move(*identity);
      Log()->info("device={} enrolled with {}", parts_->identity.device_id, config_.server);
      return Status::Ok();
    }
    const StatusCode code = identity.status().code();
    const bool refused = code == StatusCode::kUnauthenticated ||
                         code == StatusCode::kPermissionDenied ||
                         code == StatusCode::kInvalidArgument;
    std::chrono::milliseconds delay = refused ? backoff.max() : backoff.Next();
    if (refused) {
      Log()->error("enrollment refused: {}; check the enrollment token. Retrying in {} ms",
                   identity.status().message(), delay.count());
    } else {
      Log()->warn("enrollment failed: {}; retrying in {} ms", identity.status().ToString(),
                  delay.count());
    }
    SleepFor(stop, delay);
  }
  return Status::Ok();
}

void Agent::Serve(std::stop_token stop) {
  Parts& p = *parts_;
  p.channel = std::make_unique<ServerChannel>(
      ServerChannel::Options{
          .endpoint = p.endpoint,
          .identity = p.identity,
          .heartbeat_interval = std::chrono::seconds(config_.heartbeat_interval_seconds),
          .reconnect_initial = std::chrono::milliseconds(config_.reconnect_initial_ms),
          .reconnect_max = std::chrono::milliseconds(config_.reconnect_max_ms),
          .inventory = [this] { return CollectInventory(config_.computer_name); },
          .running_action_ids = [this] { return parts_->executor->RunningIds(); },
          .indicator_version =
              [this] {
                // A new session: a chunked transfer the last one cut off is resent whole.
                parts_->indicators->AbortPartial();
                return parts_->indicators->version();
              },
      },
      *p.spool, p.handler);
  p.executor = std::make_unique<ActionExecutor>(p.registry, *p.journal, *p.channel,
                                                SystemClock::Instance());
  p.handler.executor = p.executor.get();
  p.handler.live_sessions = p.live_sessions.get();
  p.handler.sink = p.channel.get();
  if (p.live_sessions) p.live_sessions->AttachSink(p.channel.get());
  p.handler.on_indicator_delta = [this](const quell::v1::IndicatorDelta& d) { OnIndicatorDelta(d); };
  // Detections spooled before now (offline, or before a restart) go with the session's spool
  // replay; from here on each one is also sent at once.
  p.detections->Attach(p.channel.get());

  {
    std::jthread watchdog([this](std::stop_token s) { WatchIsolation(s); });
    std::jthread sightings([this](std::stop_token s) { ReportFileSightings(s); });
    std::jthread indicators([this](std::stop_token s) { TickIndicators(s); });
    p.channel->Run(stop);
  }  // the watchdog and the indicator tick stop here
  // Running actions are interrupted and will run again when redelivered after a restart.
  p.executor.reset();
  if (p.live_sessions) p.live_sessions->AttachSink(nullptr);  // before the channel goes
  p.detections->Attach(nullptr);  // still spooled; sent after the next start
}

void Agent::ReportFileSightings(std::stop_token stop) {
  if (config_.file_sightings_interval_seconds == 0) return;
  const auto interval = std::chrono::seconds(config_.file_sightings_interval_seconds);
  sensors::ExecutableSightings sightings({}, SystemClock::Instance());
  while (!stop.stop_requested()) {
    SleepFor(stop, interval);
    // Only while the stream is up: what Collect returns counts as reported.
    if (stop.stop_requested() || !parts_->channel->connected()) continue;
    std::vector<quell::v1::FileSighting> due = sightings.Collect();
    for (size_t i = 0; i < due.size(); i += 500) {
      quell::v1::AgentMessage message;
      auto* batch = message.mutable_file_sightings();
      for (size_t j = i; j < std::min(due.size(), i + 500); ++j) {
        *batch->add_sightings() = std::move(due[j]);
      }
      parts_->channel->Send(std::move(message));
    }
  }
}

void Agent::WatchIsolation(std::stop_token stop) {
  const auto interval = std::chrono::seconds(config_.isolation.watchdog_interval_seconds);
  std::string last_error;
  while (!stop.stop_requested()) {
    SleepFor(stop, interval);
    if (stop.stop_requested()) break;
    auto repaired = parts_->isolation->Repair();
    if (!repaired.ok()) {
      // Logged once per distinct error: every `interval` would flood the log.
      if (repaired.status().message() != last_error) {
        Log()->error("isolation watchdog: {}", repaired.status().ToString());
        last_error = repaired.status().message();
      }
      continue;
    }
    last_error.clear();
    if (!*repaired) continue;
    Log()->warn("device={} the isolation table was removed or changed by someone else; "
                "it has been put back",
                parts_->identity.device_id);
    quell::v1::AgentMessage notice;
    notice.mutable_notice()->set_kind("IsolationTampered");
    notice.mutable_notice()->set_message(
        "the isolation table was removed or changed on the host and has been restored");
    notice.mutable_notice()->set_time_unix_ms(SystemClock::Instance().Now());
    if (Status s = parts_->channel->SendDurable(std::move(notice)); !s.ok()) {
      Log()->error("cannot spool the tamper notice: {}", s.ToString());
    }
  }
}

}  // namespace quell::agent

namespace quell::agent {

Status Agent::FetchLibraryFile(const std::string& action_id, const std::string& name,
                               const std::string& sha256, const std::string& dest,
                               std::stop_token stop) {
  LibraryDownloader downloader(
      [this] { return MakeServerChannel(parts_->endpoint, &parts_->identity); });
  return downloader.Fetch(action_id, name, sha256, dest, std::move(stop));
}

Result<SentArtifact> Agent::SendArtifact(const std::string& action_id, const std::string& name,
                                         const std::string& path, std::stop_token stop,
                                         const std::function<void(uint64_t, uint64_t)>& progress) {
  // A channel of its own per attempt: a large upload never waits behind (or delays) the
  // control stream, and a broken connection is replaced on retry.
  ArtifactUploader uploader(
      [this] { return MakeServerChannel(parts_->endpoint, &parts_->identity); });
  QUELL_ASSIGN_OR_RETURN(UploadedArtifact sent,
                         uploader.Upload(action_id, name, path, std::move(stop), progress));
  return SentArtifact{.sha256 = sent.sha256, .size = sent.size};
}

}  // namespace quell::agent
