#include "agent/isolation/isolation_controller.h"

#include <chrono>

#include "agent/isolation/server_link.h"
#include "common/files.h"
#include "common/logging.h"

namespace quell::agent {
namespace {

constexpr int kStateVersion = 1;
constexpr std::chrono::seconds kDefaultProbeTimeout{3};

std::string Endpoint(const std::string& address, uint16_t port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// The state file; no exception leaves this function.
Result<std::optional<IsolationPolicy>> ParseState(const std::string& text, UnixMillis& isolated_at) {
  try {
    const nlohmann::json doc = nlohmann::json::parse(text);
    if (doc.at("version").get<int>() != kStateVersion) {
      return InvalidArgument("unsupported state version " + doc.at("version").dump());
    }
    QUELL_ASSIGN_OR_RETURN(IsolationType type,
                           ParseIsolationType(doc.at("isolationType").get<std::string>()));
    if (type == IsolationType::kNone) return std::optional<IsolationPolicy>();
    IsolationPolicy policy{
        .type = type,
        .server_addresses = doc.at("serverAddresses").get<std::vector<std::string>>(),
        .server_port = doc.at("serverPort").get<uint16_t>(),
        .allow = {},
    };
    if (policy.server_addresses.empty()) return InvalidArgument("no pinned server address");
    for (const std::string& text_rule : doc.at("allow").get<std::vector<std::string>>()) {
      QUELL_ASSIGN_OR_RETURN(AllowRule rule, ParseAllowRule(text_rule));
      policy.allow.push_back(std::move(rule));
    }
    isolated_at = doc.at("isolatedAt").get<UnixMillis>();
    return std::optional<IsolationPolicy>(std::move(policy));
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(e.what());
  }
}

}  // namespace

IsolationController::IsolationController(Firewall& firewall, IsolationOptions options)
    : firewall_(firewall), options_([&options] {
        if (!options.link_probe) {
          options.link_probe = [](const std::vector<std::string>& addresses, uint16_t port) {
            return ProbeTcpLink(addresses, port, kDefaultProbeTimeout);
          };
        }
        if (!options.resolve) options.resolve = ResolveServerAddresses;
        return std::move(options);
      }()) {}

UnixMillis IsolationController::Now() const {
  return (options_.clock ? *options_.clock : SystemClock::Instance()).Now();
}

Status IsolationController::Apply(const IsolationPolicy& policy) {
  QUELL_RETURN_IF_ERROR(firewall_.ReplaceTable(kIsolationTableFamily, kIsolationTableName,
                                               BuildIsolationRuleset(policy)));
  Result<std::optional<std::string>> listing =
      firewall_.ReadTable(kIsolationTableFamily, kIsolationTableName);
  // Without a listing Repair cannot tell tampering apart and re-applies every time: noisy
  // but never unsafe.
  applied_listing_ = listing.ok() ? *listing : std::nullopt;
  if (!listing.ok()) {
    Logger("agent.isolation")->warn("cannot read back the isolation table: {}",
                                    listing.status().ToString());
  }
  return Status::Ok();
}

Status IsolationController::RemoveTable() {
  QUELL_RETURN_IF_ERROR(firewall_.DeleteTable(kIsolationTableFamily, kIsolationTableName));
  applied_listing_.reset();
  return Status::Ok();
}

Status IsolationController::RollBack(const std::optional<State>& previous) {
  Status undone = previous ? Apply(previous->policy) : RemoveTable();
  if (!undone.ok()) {
    Logger("agent.isolation")->error("rolling back isolation failed: {}", undone.ToString());
  }
  return undone;
}

Status IsolationController::Persist(const std::optional<State>& state) {
  nlohmann::json doc = {{"version", kStateVersion}};
  if (!state) {
    doc["isolationType"] = "None";
    doc["releasedAt"] = Now();
  } else {
    nlohmann::json allow = nlohmann::json::array();
    for (const AllowRule& rule : state->policy.allow) allow.push_back(rule.ToString());
    doc["isolationType"] = IsolationTypeName(state->policy.type);
    doc["serverAddresses"] = state->policy.server_addresses;
    doc["serverPort"] = state->policy.server_port;
    doc["allow"] = std::move(allow);
    doc["isolatedAt"] = state->isolated_at;
  }
  return WriteFileAtomic(options_.state_path, doc.dump(2) + "\n", 0600)
      .WithContext("persisting isolation state");
}

nlohmann::json IsolationController::Describe(const State& state) const {
  nlohmann::json pinned = nlohmann::json::array();
  for (const std::string& address : state.policy.server_addresses) {
    pinned.push_back(Endpoint(address, state.policy.server_port));
  }
  nlohmann::json allow = nlohmann::json::array();
  for (const AllowRule& rule : state.policy.allow) allow.push_back(rule.ToString());
  return {{"isolationType", IsolationTypeName(state.policy.type)},
          {"pinnedServer", std::move(pinned)},
          {"allow", std::move(allow)},
          {"isolatedAt", FormatIso8601(state.isolated_at)}};
}

Status IsolationController::Restore() {
  std::lock_guard lock(mutex_);
  auto log = Logger("agent.isolation");
  Result<std::string> text = ReadFile(options_.state_path);
  std::optional<IsolationPolicy> policy;
  UnixMillis isolated_at = 0;
  if (text.ok()) {
    Result<std::optional<IsolationPolicy>> parsed = ParseState(*text, isolated_at);
    if (!parsed.ok()) {
      return Internal("isolation state " + options_.state_path +
                      " is unreadable, firewall left as it is: " + parsed.status().message());
    }
    policy = std::move(parsed).value();
  } else if (text.status().code() != StatusCode::kNotFound) {
    return text.status().WithContext("reading isolation state");
  }

  if (!policy) {
    // A table without a persisted state is from an Isolate that never reported success.
    state_.reset();
    return RemoveTable().WithContext("removing an unrecorded isolation table");
  }
  QUELL_RETURN_IF_ERROR(Apply(*policy).WithContext("re-applying persisted isolation"));
  state_ = State{.policy = std::move(*policy), .isolated_at = isolated_at};
  log->info("isolation restored: type={} server={}", IsolationTypeName(state_->policy.type),
            Describe(*state_)["pinnedServer"].dump());
  return Status::Ok();
}

Result<nlohmann::json> IsolationController::Isolate(IsolationType type) {
  if (type == IsolationType::kNone) return InvalidArgument("isolation type None is a release");
  std::lock_guard lock(mutex_);
  auto log = Logger("agent.isolation");
  const std::optional<State> previous = state_;

  IsolationPolicy policy{.type = type,
                         .server_addresses = {},
                         .server_port = options_.server_port,
                         .allow = {}};
  if (type == IsolationType::kSelective) policy.allow = options_.selective_allow;
  if (previous) {
    policy.server_addresses = previous->policy.server_addresses;
    policy.server_port = previous->policy.server_port;
  } else {
    QUELL_ASSIGN_OR_RETURN(policy.server_addresses, options_.resolve(options_.server_host));
  }
  if (policy.server_port == 0) return FailedPrecondition("no server port configured");

  QUELL_RETURN_IF_ERROR(Apply(policy).WithContext("applying isolation rules"));

  Status link = options_.link_probe(policy.server_addresses, policy.server_port);
  if (!link.ok()) {
    Status undone = RollBack(previous);
    const std::string cut = "isolation rules cut the server link (" + link.message() + ")";
    if (!undone.ok()) return Internal(cut + " and rolling back failed: " + undone.message());
    const std::string back_to(previous ? IsolationTypeName(previous->policy.type)
                                       : std::string_view("no isolation"));
    log->warn("{}; rolled back to {}", cut, back_to);
    return Unavailable(cut + "; rolled back to " + back_to);
  }

  State next{.policy = std::move(policy), .isolated_at = previous ? previous->isolated_at : Now()};
  if (Status persisted = Persist(next); !persisted.ok()) {
    Status undone = RollBack(previous);
    return persisted.WithContext(undone.ok() ? "isolation rolled back" : "rollback failed too");
  }
  state_ = std::move(next);
  nlohmann::json result = Describe(*state_);
  log->info("isolated: type={} server={}", IsolationTypeName(type), result["pinnedServer"].dump());
  return result;
}

Result<nlohmann::json> IsolationController::Release() {
  std::lock_guard lock(mutex_);
  const std::optional<State> previous = state_;
  QUELL_RETURN_IF_ERROR(RemoveTable().WithContext("removing isolation rules"));
  if (Status persisted = Persist(std::nullopt); !persisted.ok()) {
    // Keep kernel, memory and disk in agreement: the disk still says isolated.
    Status undone = RollBack(previous);
    return persisted.WithContext(undone.ok() ? "host stays isolated" : "re-isolating failed too");
  }
  state_.reset();
  const UnixMillis now = Now();
  Logger("agent.isolation")->info("released from isolation");
  return nlohmann::json{
      {"isolationType", "None"},
      {"previousIsolationType",
       IsolationTypeName(previous ? previous->policy.type : IsolationType::kNone)},
      {"releasedAt", FormatIso8601(now)}};
}

Result<bool> IsolationController::Repair() {
  std::lock_guard lock(mutex_);
  if (!state_) return false;
  QUELL_ASSIGN_OR_RETURN(std::optional<std::string> listing,
                         firewall_.ReadTable(kIsolationTableFamily, kIsolationTableName));
  if (listing && applied_listing_ && *listing == *applied_listing_) return false;
  Logger("agent.isolation")
      ->warn("isolation table was {} by someone else; re-applying", listing ? "changed" : "removed");
  QUELL_RETURN_IF_ERROR(Apply(state_->policy).WithContext("repairing isolation"));
  return true;
}

IsolationType IsolationController::Current() const {
  std::lock_guard lock(mutex_);
  return state_ ? state_->policy.type : IsolationType::kNone;
}

}  // namespace quell::agent
