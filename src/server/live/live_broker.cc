#include "server/live/live_broker.h"

#include <algorithm>

#include "common/logging.h"
#include "server/api/action_links.h"
#include "server/blobs/blob_store.h"
#include "server/live/live_line.h"
#include "server/live/live_session_state.h"
#include "server/store/library_file_name.h"

namespace quell::server::live {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

constexpr char kDisconnected[] = "the device disconnected while the command ran";

std::string FinalHex(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (ctx == nullptr || EVP_DigestFinal_ex(ctx, digest, &len) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

std::string Capitalized(std::string_view s) {
  std::string out(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string IdleReason(UnixMillis idle_ms) {
  if (idle_ms % 60'000 == 0) {
    const UnixMillis minutes = idle_ms / 60'000;
    return "idle for " + std::to_string(minutes) + (minutes == 1 ? " minute" : " minutes");
  }
  return "idle for " + std::to_string(idle_ms / 1000) + " seconds";
}

}  // namespace

class LiveSessionBroker::Socket final : public http::WebSocketHandler {
 public:
  Socket(LiveSessionBroker& broker, std::string session_id)
      : broker_(broker), session_id_(std::move(session_id)) {}
  void OnOpen(std::shared_ptr<http::WebSocketConnection> connection) override {
    broker_.OnSocketOpen(session_id_, std::move(connection));
  }
  void OnText(const std::string& text) override { broker_.OnSocketText(session_id_, text); }
  void OnClose() override { broker_.OnSocketClose(session_id_); }

 private:
  LiveSessionBroker& broker_;
  const std::string session_id_;
};

LiveSessionBroker::LiveSessionBroker(ApiContext& api, BrokerOptions options)
    : api_(api), options_(options) {}

LiveSessionBroker::~LiveSessionBroker() { Stop(); }

void LiveSessionBroker::Start() {
  std::lock_guard lock(ticker_mu_);
  if (ticker_.joinable() || stopping_) return;
  ticker_ = std::thread([this] {
    std::unique_lock lock(ticker_mu_);
    while (!stopping_) {
      ticker_cv_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms));
      if (stopping_) break;
      lock.unlock();
      Tick();
      lock.lock();
    }
  });
}

void LiveSessionBroker::Stop() {
  {
    std::lock_guard lock(ticker_mu_);
    stopping_ = true;
  }
  ticker_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  CloseList closes;
  {
    std::lock_guard lock(mu_);
    std::vector<std::string> ids;
    for (const auto& [id, s] : sessions_) ids.push_back(id);
    for (const std::string& id : ids) EndSession(id, "the server is stopping", true, closes);
  }
  for (auto& [conn, reason] : closes) conn->Close(reason);
}

size_t LiveSessionBroker::SessionCount() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

// ---- opening -----------------------------------------------------------------------------

http::UpgradeDecision LiveSessionBroker::Open(Request& request) {
  Result<ApiToken> token = Authorize(api_, request, Role::kResponder);
  if (!token.ok()) return {nullptr, Response::FromStatus(token.status())};
  const std::string& machine_id = request.path_params.at("id");
  Result<Device> device = api_.store.GetDevice(machine_id);
  if (!device.ok()) return {nullptr, Response::FromStatus(device.status())};
  if (device->offboarded) {
    return {nullptr, Response::Error(404, "NotFound", "machine " + machine_id + " is offboarded")};
  }
  if (api_.sessions.Find(machine_id) == nullptr) {
    return {nullptr, Response::Error(409, "DeviceNotConnected",
                                     "machine " + machine_id +
                                         " is not connected; a live response session needs its "
                                         "agent online")};
  }
  size_t open = 0;
  for (ActionStatus st : {ActionStatus::kPending, ActionStatus::kInProgress}) {
    Result<std::vector<MachineAction>> actions =
        api_.store.ListActions({.status = st, .type = "LiveResponse"});
    if (!actions.ok()) return {nullptr, Response::FromStatus(actions.status())};
    open += actions->size();
  }
  if (open >= api_.max_live_response_sessions) {
    return {nullptr, Response::Error(429, "TooManyRequests",
                                     "Too many requests: " + std::to_string(open) +
                                         " live response sessions are open (at most " +
                                         std::to_string(api_.max_live_response_sessions) + ")")};
  }
  const ActionTypeSpec* spec = FindActionType("LiveResponse");
  ParsedActionBody body;
  body.comment = "interactive live response session";
  body.agent_parameters = {{"Interactive", true}};
  Result<MachineAction> action = api_.actions.Create({.machine_id = machine_id,
                                                      .spec = spec,
                                                      .body = body,
                                                      .requestor = token->name,
                                                      .request_source = "LiveResponse"});
  if (!action.ok()) {
    if (action.status().code() == StatusCode::kFailedPrecondition &&
        action.status().message() == kActionInProgress) {
      return {nullptr, Response::Error(400, spec->conflict_error_code,
                                       "a live response session or request is already open on "
                                       "machine " + machine_id)};
    }
    return {nullptr, Response::FromStatus(action.status())};
  }
  const UnixMillis now = api_.clock.Now();
  auto session = std::make_unique<Session>();
  session->id = action->id;
  session->device_id = machine_id;
  session->computer_dns_name = device->computer_dns_name;
  session->token = *token;
  session->opened = now;
  session->last_activity = now;
  {
    std::lock_guard lock(mu_);
    sessions_[action->id] = std::move(session);
  }
  Audit(token->name, "live.session.opened", action->id,
        {{"machineId", machine_id}, {"role", RoleName(token->role)}});
  Logger("server.live")->info("session={} device={} opened by {}", action->id, machine_id,
                              token->name);
  return {std::make_shared<Socket>(*this, action->id), {}};
}

void LiveSessionBroker::OnSocketOpen(const std::string& session_id,
                                     std::shared_ptr<http::WebSocketConnection> conn) {
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session_id);
    if (it != sessions_.end()) {
      Session& s = *it->second;
      s.conn = conn;
      Send(s, {{"type", "session"},
               {"sessionId", s.id},
               {"machineId", s.device_id},
               {"computerDnsName", s.computer_dns_name},
               {"idleTimeoutSeconds", options_.idle_timeout_ms / 1000},
               {"cwd", s.cwd},
               {"role", Capitalized(RoleName(s.token.role))}});
      return;
    }
  }
  conn->SendText(json{{"type", "closed"}, {"reason", "the session has ended"}}.dump());
  conn->Close("the session has ended");
}

void LiveSessionBroker::OnSocketClose(const std::string& session_id) {
  CloseList closes;
  {
    std::lock_guard lock(mu_);
    EndSession(session_id, "the client went away", false, closes);
  }
  // The connection is gone already; Close() on it does nothing.
}

// ---- client messages ---------------------------------------------------------------------

void LiveSessionBroker::OnSocketText(const std::string& session_id, const std::string& text) {
  CloseList closes;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return;
    Session& s = *it->second;
    const json message = json::parse(text, nullptr, false);
    if (!message.is_object() || !message.contains("type") || !message["type"].is_string()) {
      Send(s, {{"type", "error"},
               {"error", "each message is a JSON object with a \"type\": command, cancel or close"}});
      return;
    }
    const std::string type = message["type"];
    if (type == "command") {
      if (!message.contains("line") || !message["line"].is_string()) {
        Send(s, {{"type", "error"}, {"error", "a command message needs a \"line\" string"}});
        return;
      }
      s.last_activity = api_.clock.Now();
      HandleLine(s, message["line"].get<std::string>());
    } else if (type == "cancel") {
      s.last_activity = api_.clock.Now();
      std::optional<uint32_t> id = s.foreground;
      if (message.contains("commandId")) {
        if (!message["commandId"].is_number_unsigned()) {
          Send(s, {{"type", "error"}, {"error", "\"commandId\" must be a command number"}});
          return;
        }
        id = message["commandId"].get<uint32_t>();
      }
      auto c = id ? s.commands.find(*id) : s.commands.end();
      if (c == s.commands.end() || c->second.done) {
        Send(s, {{"type", "error"},
                 {"error", id ? "command " + std::to_string(*id) + " is not running"
                              : "no command is running in the foreground"}});
        return;
      }
      CancelCommand(s, c->second);
    } else if (type == "close") {
      EndSession(session_id, "closed by the client", true, closes);
    } else {
      Send(s, {{"type", "error"},
               {"error", "unknown message type '" + type + "' (command, cancel or close)"}});
    }
  }
  for (auto& [conn, reason] : closes) conn->Close(reason);
}

void LiveSessionBroker::HandleLine(Session& s, const std::string& line) {
  Result<ParsedLine> parsed = ParseLine(line);
  const bool background = parsed.ok() && parsed->background;
  if (s.foreground && !background) {
    auto fg = s.commands.find(*s.foreground);
    if (fg != s.commands.end() && !fg->second.done) {
      Send(s, {{"type", "error"},
               {"error", "command " + std::to_string(*s.foreground) +
                             " is still running; wait, cancel it, or end the line with &"}});
      return;
    }
  }
  const uint32_t id = s.next_id++;
  Command& c = s.commands[id];
  c.id = id;
  c.line = line.size() > kMaxLineBytes ? line.substr(0, kMaxLineBytes) : line;
  c.background = background;
  c.started_background = background;
  c.start = api_.clock.Now();
  if (!background) s.foreground = id;
  Send(s, {{"type", "started"}, {"commandId", id}, {"line", c.line}, {"background", background}});
  if (!parsed.ok()) return Finish(s, c, "Failed", std::string(parsed.status().message()));
  c.parsed = std::move(parsed).value();
  const std::string& name = c.parsed.argv[0];
  c.spec = FindCommand(name);
  if (c.spec == nullptr) {
    return Finish(s, c, "Failed", "unknown command '" + name + "'; type help for the list");
  }
  if (s.token.role < c.spec->role) {
    return Finish(s, c, "Failed",
                  name + " needs the " + std::string(RoleName(c.spec->role)) + " role");
  }
  if (name == "run") {
    if (c.parsed.argv.size() < 2) return Finish(s, c, "Failed", "usage: " + std::string(c.spec->usage));
    if (Status ok = CheckRunArguments({c.parsed.argv.begin() + 2, c.parsed.argv.end()});
        !ok.ok()) {
      return Finish(s, c, "Failed", std::string(ok.message()));
    }
  }
  if (c.spec->side == CommandSide::kServer) {
    RunServerCommand(s, c, c.parsed.output_format == "json");
  } else {
    StartAgentCommand(s, c);
  }
}

// ---- agent-side commands -----------------------------------------------------------------

void LiveSessionBroker::StartAgentCommand(Session& s, Command& c) {
  const std::vector<std::string>& argv = c.parsed.argv;
  quell::v1::ServerMessage message;
  quell::v1::LiveCommand* command = message.mutable_live_command();
  if (argv[0] == "putfile" || argv[0] == "run") {
    if (argv.size() < 2) return Finish(s, c, "Failed", "usage: " + std::string(c.spec->usage));
    if (Status name = ValidateLibraryFileName(argv[1]); !name.ok()) {
      return Finish(s, c, "Failed", std::string(name.message()));
    }
    Result<LibraryFile> file = api_.store.GetLibraryFile(argv[1]);
    if (!file.ok()) {
      return Finish(s, c, "Failed",
                    file.status().code() == StatusCode::kNotFound
                        ? "library file '" + argv[1] +
                              "' does not exist; type library for the list"
                        : "cannot read the library: " + std::string(file.status().message()));
    }
    command->set_library_sha256(file->sha256);
    command->set_library_size(file->size);
  }
  std::shared_ptr<AgentLink> link = api_.sessions.Find(s.device_id);
  if (link == nullptr) return Finish(s, c, "Disconnected", "the device is not connected");
  command->set_session_id(s.id);
  command->set_command_id(c.id);
  for (const std::string& word : argv) command->add_argv(word);
  command->set_output_format(c.parsed.output_format);
  command->set_requested_by(s.token.name);
  command->set_time_limit_seconds(c.spec->time_limit_seconds);
  c.link = link;
  c.deadline = c.start + static_cast<UnixMillis>(c.spec->time_limit_seconds) * 1000 +
               options_.grace_ms;
  if (!link->Send(std::move(message))) {
    return Finish(s, c, "Disconnected", "the device is not connected");
  }
}

void LiveSessionBroker::CancelCommand(Session& s, Command& c) {
  if (!c.action_id.empty()) {
    Result<MachineAction> cancelled = api_.actions.Cancel(
        c.action_id, s.token.name, "cancelled from live response session " + s.id);
    if (!cancelled.ok() && cancelled.status().code() != StatusCode::kFailedPrecondition) {
      Send(s, {{"type", "error"},
               {"error", "cannot cancel action " + c.action_id + ": " +
                             std::string(cancelled.status().message())}});
      return;
    }
    FollowAction(s, c);
    return;
  }
  if (c.link != nullptr) {
    quell::v1::ServerMessage message;
    message.mutable_live_cancel()->set_session_id(s.id);
    message.mutable_live_cancel()->set_command_id(c.id);
    c.link->Send(std::move(message));
    if (!c.cancel_requested) c.cancel_requested = api_.clock.Now();
  }
}

void LiveSessionBroker::OnLiveOutput(const std::string& device_id,
                                     const quell::v1::LiveOutput& output) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(output.session_id());
  if (it == sessions_.end() || it->second->device_id != device_id) {
    Logger("server.live")->warn("device={} sent output for session {} it does not hold; dropped",
                                device_id, output.session_id());
    return;
  }
  Session& s = *it->second;
  auto c = s.commands.find(output.command_id());
  if (c == s.commands.end() || c->second.done || c->second.link == nullptr) return;
  if (!output.text().empty()) AppendOutput(s, c->second, output.text());
  if (!output.done()) return;
  std::string status = output.status();
  std::string error = output.error();
  if (status != "Completed" && status != "Failed" && status != "Cancelled" && status != "TimedOut") {
    error = "the device reported status '" + status + "'" + (error.empty() ? "" : ": " + error);
    status = "Failed";
  }
  if (!output.cwd().empty()) s.cwd = output.cwd();
  if (!output.artifact_name().empty()) {
    c->second.artifact = {{"name", output.artifact_name()},
                          {"size", output.artifact_size()},
                          {"sha256", output.artifact_sha256()}};
  }
  Finish(s, c->second, status, error);
}

// ---- common ------------------------------------------------------------------------------

void LiveSessionBroker::AppendOutput(Session& s, Command& c, const std::string& text) {
  c.output_bytes += text.size();
  if (c.sha) EVP_DigestUpdate(c.sha.get(), text.data(), text.size());
  if (c.kept.size() < options_.max_kept_output_bytes) {
    const size_t room = options_.max_kept_output_bytes - c.kept.size();
    c.kept.append(text, 0, std::min(room, text.size()));
    if (text.size() > room) c.truncated = true;
  } else if (!text.empty()) {
    c.truncated = true;
  }
  if (!c.background) Send(s, {{"type", "output"}, {"commandId", c.id}, {"text", text}});
}

void LiveSessionBroker::Finish(Session& s, Command& c, const std::string& status,
                               const std::string& error) {
  if (c.done) return;
  const UnixMillis now = api_.clock.Now();
  c.done = true;
  c.status = status;
  c.error = error;
  c.end = now;
  c.link.reset();
  s.last_activity = now;
  json details = {{"machineId", s.device_id},
                  {"commandId", c.id},
                  {"line", c.line},
                  {"startTime", FormatIso8601(c.start)},
                  {"endTime", FormatIso8601(c.end)},
                  {"durationMs", c.end - c.start},
                  {"status", status},
                  {"error", error},
                  {"background", c.started_background},
                  {"outputBytes", c.output_bytes},
                  {"artifact", c.artifact}};
  if (!c.truncated && c.output_bytes <= options_.max_inline_audit_output) {
    details["output"] = c.kept;
  } else {
    details["outputSha256"] = FinalHex(c.sha.get());
  }
  if (!c.action_id.empty()) details["actionId"] = c.action_id;
  Audit(s.token.name, "live.command", s.id, details);
  if (c.background) {
    Send(s, {{"type", "job"}, {"commandId", c.id}, {"status", status}});
  } else {
    json done = {{"type", "done"}, {"commandId", c.id}, {"status", status}, {"error", error},
                 {"durationMs", c.end - c.start}, {"cwd", s.cwd}};
    if (!c.artifact.is_null()) done["artifact"] = c.artifact;
    Send(s, done);
  }
  if (s.foreground == c.id) s.foreground.reset();
}

void LiveSessionBroker::Tick() {
  CloseList closes;
  {
    std::lock_guard lock(mu_);
    const UnixMillis now = api_.clock.Now();
    std::vector<std::pair<std::string, std::string>> to_end;
    for (auto& [id, session] : sessions_) {
      Session& s = *session;
      Result<MachineAction> action = api_.store.GetAction(s.id);
      if (action.ok() && IsFinal(action->status)) {
        to_end.emplace_back(id, "the session's action is " +
                                    std::string(ActionStatusName(action->status)) +
                                    (action->status_message.empty()
                                         ? ""
                                         : " (" + action->status_message + ")"));
        continue;
      }
      std::shared_ptr<AgentLink> current = api_.sessions.Find(s.device_id);
      bool running = false;
      for (auto& [cid, c] : s.commands) {
        if (c.done) continue;
        if (!c.action_id.empty()) {
          FollowAction(s, c);
        } else if (c.link != nullptr) {
          if (!c.link->Queued().has_value() || current != c.link) {
            Finish(s, c, "Disconnected", kDisconnected);
          } else if (now >= c.deadline) {
            quell::v1::ServerMessage message;
            message.mutable_live_cancel()->set_session_id(s.id);
            message.mutable_live_cancel()->set_command_id(c.id);
            c.link->Send(std::move(message));
            Finish(s, c, "TimedOut",
                   "no result within the " + std::to_string(c.spec->time_limit_seconds) +
                       "-second limit");
          } else if (c.cancel_requested && now - *c.cancel_requested >= options_.grace_ms) {
            Finish(s, c, "Cancelled", "the device did not confirm the cancellation in time");
          }
        }
        if (!c.done) running = true;
      }
      if (!running && now - s.last_activity >= options_.idle_timeout_ms) {
        to_end.emplace_back(id, IdleReason(options_.idle_timeout_ms));
      }
    }
    for (const auto& [id, reason] : to_end) EndSession(id, reason, true, closes);
  }
  for (auto& [conn, reason] : closes) conn->Close(reason);
}

void LiveSessionBroker::EndSession(const std::string& session_id, const std::string& reason,
                                   bool tell_client, CloseList& closes) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return;
  Session& s = *it->second;
  for (auto& [cid, c] : s.commands) {
    if (c.done) continue;
    Finish(s, c, "Cancelled",
           c.action_id.empty() ? "the session ended: " + reason
                               : "the session ended (" + reason + "); action " + c.action_id +
                                     " continues");
  }
  // The agent ends a session it runs when told so; one it has not started (the action is
  // still Pending) or cannot be told about (not connected) ends by cancelling the action.
  Result<MachineAction> action = api_.store.GetAction(s.id);
  if (action.ok() && !IsFinal(action->status)) {
    bool told = false;
    if (action->status == ActionStatus::kInProgress) {
      if (std::shared_ptr<AgentLink> link = api_.sessions.Find(s.device_id)) {
        quell::v1::ServerMessage message;
        message.mutable_live_cancel()->set_session_id(s.id);
        message.mutable_live_cancel()->set_command_id(0);
        told = link->Send(std::move(message));
      }
    }
    if (!told) {
      Result<MachineAction> cancelled =
          api_.actions.Cancel(s.id, s.token.name, "live response session ended: " + reason);
      if (!cancelled.ok()) {
        Logger("server.live")->warn("session={} cannot be cancelled: {}", s.id,
                                    cancelled.status().ToString());
      }
    }
  }
  Audit(s.token.name, "live.session.closed", s.id,
        {{"machineId", s.device_id}, {"reason", reason}, {"commands", s.commands.size()}});
  Logger("server.live")->info("session={} device={} closed: {}", s.id, s.device_id, reason);
  if (s.conn) {
    if (tell_client) Send(s, {{"type", "closed"}, {"reason", reason}});
    closes.emplace_back(s.conn, reason);
  }
  sessions_.erase(it);
}

void LiveSessionBroker::Send(Session& s, const json& message) {
  if (s.conn) s.conn->SendText(message.dump(-1, ' ', false, json::error_handler_t::replace));
}

void LiveSessionBroker::Audit(const std::string& actor, const std::string& operation,
                              const std::string& target, const json& details) {
  Status appended = api_.store.AppendAudit(
      {.time = api_.clock.Now(),
       .actor = actor,
       .operation = operation,
       .target = target,
       .details_json = details.dump(-1, ' ', false, json::error_handler_t::replace)});
  if (!appended.ok()) {
    Logger("server.live")->error("{} of {} not audited: {}", operation, target,
                                 appended.ToString());
  }
}

}  // namespace quell::server::live
