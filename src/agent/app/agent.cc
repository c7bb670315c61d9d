#include "agent/app/agent.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "agent/actions/builtin_actions.h"
#include "agent/app/action_executor.h"
#include "agent/app/inventory.h"
#include "agent/channel/backoff.h"
#include "agent/channel/enrollment.h"
#include "agent/channel/server_channel.h"
#include "agent/detect/spooled_detection_sink.h"
#include "agent/isolation/isolation_controller.h"
#include "agent/platform/exec_gate_fanotify.h"
#include "agent/platform/nftables_firewall.h"
#include "agent/restriction/restriction_controller.h"
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
  ActionExecutor* executor = nullptr;
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
  std::unique_ptr<FanotifyExecGate> exec_gate;
  std::unique_ptr<RestrictionController> restriction;  // answers the exec_gate's events
  std::unique_ptr<ActionJournal> journal;
  ActionRegistry registry;
  Identity identity;
  ExecutorHandler handler;
  std::unique_ptr<ServerChannel> channel;
  std::unique_ptr<ActionExecutor> executor;
};

Agent::Agent(AgentConfig config) : config_(std::move(config)), parts_(std::make_unique<Parts>()) {}

Agent::~Agent() = default;

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
  RestoreRestriction();
  QUELL_ASSIGN_OR_RETURN(parts_->journal, ActionJournal::Open(config_.state_dir + "/actions",
                                                              SystemClock::Instance()));
  const auto retention = std::chrono::duration_cast<std::chrono::milliseconds>(kJournalRetention);
  if (Status s = parts_->journal->PruneFinishedBefore(SystemClock::Instance().Now() -
                                                      retention.count());
      !s.ok()) {
    Log()->warn("cannot prune the action journal: {}", s.ToString());
  }
  RegisterBuiltinActions(parts_->registry,
                         BuiltinActionDeps{.isolation = parts_->isolation.get(),
                                           .detections = parts_->detections.get(),
                                           .scan = &config_.scan,
                                           .restriction = parts_->restriction.get()});
  for (const ActionSpec* spec : parts_->registry.Specs()) {
    Log()->debug("action {} (undo: {}, risk {})", spec->type,
                 spec->undo_type.empty() ? "-" : spec->undo_type, spec->risk);
  }
  QUELL_ASSIGN_OR_RETURN(parts_->endpoint.ca_pem, ReadPinnedCa(config_.ca_cert));
  parts_->endpoint.target = config_.server;
  parts_->endpoint.server_name = config_.server_name;
  return Status::Ok();
}

void Agent::RestoreRestriction() {
  parts_->exec_gate = std::make_unique<FanotifyExecGate>();
  parts_->restriction = std::make_unique<RestrictionController>(
      *parts_->exec_gate, parts_->detections.get(),
      RestrictionOptions{
          .state_path = config_.state_dir + "/restriction.json",
          .allow_sha256 = config_.restriction.allow_sha256,
          .require_private_mount_namespace = config_.restriction.require_private_mount_namespace,
      });
  // Before any connection, like isolation. Unlike isolation this does not stop the agent: a
  // restriction that cannot be re-applied leaves execution unrestricted, and staying online
  // lets the operator see the error and act.
  if (Status s = parts_->restriction->Restore(); !s.ok()) {
    Log()->error("restore execution restriction: {}", s.ToString());
  }
  Log()->info("execution restriction: {}", RestrictionModeName(parts_->restriction->Current()));
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
      },
      *p.spool, p.handler);
  p.executor = std::make_unique<ActionExecutor>(p.registry, *p.journal, *p.channel,
                                                SystemClock::Instance());
  p.handler.executor = p.executor.get();
  // Detections spooled before now (offline, or before a restart) go with the session's spool
  // replay; from here on each one is also sent at once.
  p.detections->Attach(p.channel.get());

  {
    std::jthread watchdog([this](std::stop_token s) { WatchIsolation(s); });
    p.channel->Run(stop);
  }  // the watchdog stops here
  // Running actions are interrupted and will run again when redelivered after a restart.
  p.executor.reset();
  p.detections->Attach(nullptr);  // still spooled; sent after the next start
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
