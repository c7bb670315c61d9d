#include "agent/live/live_session_host.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "agent/live/live_output_stream.h"
#include "common/logging.h"
#include "common/utf8.h"

namespace quell::agent::live {
namespace {

using SteadyClock = std::chrono::steady_clock;

auto Log() {
  static auto log = Logger("live");
  return log;
}

constexpr std::chrono::seconds kDefaultTimeLimit{120};

enum Why : int { kRunning = 0, kCancelledByUser = 1, kTimedOut = 2 };

// How long a command's output may wait for more before it is sent anyway.
constexpr std::chrono::milliseconds kOutputDelay{200};
// How many ended sessions are remembered, so that a late command for one fails at once.
constexpr size_t kRememberedEndedSessions = 64;

// LiveOutput.text is a proto3 string, which the receiver refuses to parse unless it is valid
// UTF-8; "\xNN" keeps the original bytes visible to the analyst.
std::string ValidUtf8(std::string_view in) {
  return quell::ValidUtf8(in, InvalidUtf8::kHexEscape);
}

}  // namespace

struct LiveSessionHost::Command {
  uint32_t id = 0;
  std::stop_source stop;
  std::atomic<int> why{kRunning};
  SteadyClock::time_point deadline;
  bool finished = false;  // guarded by the host's mu_
  std::shared_ptr<LiveOutputStream> output;  // guarded by the host's mu_; set while it runs
  std::jthread thread;
};

struct LiveSessionHost::Session {
  Session(std::string session_id, const LiveShellOptions& options)
      : id(std::move(session_id)), shell(options) {}
  std::string id;
  LiveShell shell;
  std::map<uint32_t, std::shared_ptr<Command>> commands;  // guarded by mu_
  bool ended = false;            // no more commands are taken
  bool ended_by_server = false;  // LiveCancel{0}
  uint32_t received = 0;
};

LiveSessionHost::LiveSessionHost(LiveShellOptions options,
                                 std::chrono::milliseconds session_open_wait)
    : options_(std::move(options)),
      session_open_wait_(session_open_wait), timer_([this](std::stop_token s) { TimerLoop(s); }) {}

LiveSessionHost::~LiveSessionHost() {
  timer_.request_stop();
  std::vector<std::jthread> threads;
  {
    std::unique_lock lock(mu_);
    for (auto& [id, session] : sessions_) {
      session->ended = true;
      for (auto& [cid, cmd] : session->commands) {
        int expected = kRunning;
        cmd->why.compare_exchange_strong(expected, kCancelledByUser);
        cmd->stop.request_stop();
      }
    }
    cv_.notify_all();
    for (auto& [id, session] : sessions_) {
      for (auto& [cid, cmd] : session->commands) threads.push_back(std::move(cmd->thread));
    }
  }
  threads.clear();  // joins
}

void LiveSessionHost::AttachSink(MessageSink* sink) {
  std::lock_guard lock(sink_mu_);
  sink_ = sink;
}

void LiveSessionHost::Send(quell::v1::AgentMessage message) {
  std::lock_guard lock(sink_mu_);
  if (sink_ != nullptr) sink_->Send(std::move(message));
}

void LiveSessionHost::SendDone(const std::string& session_id, uint32_t command_id,
                               const std::string& status, const std::string& error,
                               const std::string& cwd, const LiveCommandOutcome* outcome) {
  quell::v1::AgentMessage m;
  quell::v1::LiveOutput* o = m.mutable_live_output();
  o->set_session_id(session_id);
  o->set_command_id(command_id);
  o->set_done(true);
  o->set_status(status);
  o->set_error(ValidUtf8(error));
  o->set_cwd(ValidUtf8(cwd));
  if (outcome != nullptr && !outcome->artifact_name.empty()) {
    o->set_artifact_name(outcome->artifact_name);
    o->set_artifact_size(outcome->artifact_size);
    o->set_artifact_sha256(outcome->artifact_sha256);
  }
  Send(std::move(m));
}

size_t LiveSessionHost::open_sessions() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

Result<uint32_t> LiveSessionHost::RunSession(const std::string& session_id, std::stop_token stop,
                                             const std::function<void()>& opened) {
  auto session = std::make_shared<Session>(session_id, options_);
  {
    std::lock_guard lock(mu_);
    if (!sessions_.emplace(session_id, session).second) {
      return AlreadyExists("live response session " + session_id + " is already open");
    }
  }
  Log()->info("session={} opened", session_id);
  opened();
  std::vector<std::pair<uint32_t, std::string>> refused;
  {
    std::vector<std::jthread> finished;
    std::lock_guard lock(mu_);
    auto parked = parked_.extract(session_id);
    if (!parked.empty()) {
      for (const Parked& p : parked.mapped()) {
        if (auto why = StartCommand(*session, session, p.command, finished)) {
          refused.emplace_back(p.command.command_id(), *why);
        }
      }
    }
  }
  for (const auto& [id, why] : refused) SendDone(session_id, id, "Failed", why, "/");
  std::vector<std::jthread> threads;
  bool by_server = false;
  uint32_t received = 0;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, stop, [&] { return session->ended; });
    session->ended = true;
    for (auto& [cid, cmd] : session->commands) {
      if (cmd->finished) continue;
      int expected = kRunning;
      cmd->why.compare_exchange_strong(expected, kCancelledByUser);
      cmd->stop.request_stop();
    }
    // Unbounded on purpose: every command honours its stop token, and its thread refers to
    // the session.
    cv_.wait(lock, [&] {
      return std::all_of(session->commands.begin(), session->commands.end(),
                         [](const auto& kv) { return kv.second->finished; });
    });
    for (auto& [cid, cmd] : session->commands) threads.push_back(std::move(cmd->thread));
    session->commands.clear();
    sessions_.erase(session_id);
    ended_.push_back(session_id);
    if (ended_.size() > kRememberedEndedSessions) ended_.pop_front();
    by_server = session->ended_by_server;
    received = session->received;
  }
  threads.clear();
  Log()->info("session={} closed ({}) after {} commands", session_id,
              by_server ? "ended by the server" : "cancelled", received);
  if (!by_server) return Cancelled("live response session cancelled");
  return received;
}

void LiveSessionHost::OnCommand(const quell::v1::LiveCommand& command) {
  std::vector<std::jthread> finished;  // joined outside the lock
  std::unique_lock lock(mu_);
  auto it = sessions_.find(command.session_id());
  const bool ended = it == sessions_.end()
                         ? std::find(ended_.begin(), ended_.end(), command.session_id()) != ended_.end()
                         : it->second->ended;
  if (it == sessions_.end() && !ended) {
    // The session's action arrived first on the stream, but the executor may not have
    // started it yet: hold the command until the session opens.
    parked_[command.session_id()].push_back(
        {.command = command, .until = SteadyClock::now() + session_open_wait_});
    ++commands_started_;  // the timer must expire it
    cv_.notify_all();
    return;
  }
  if (ended) {
    lock.unlock();
    SendDone(command.session_id(), command.command_id(), "Failed",
             "no open session " + command.session_id() + " on this device", "");
    return;
  }
  std::optional<std::string> refused = StartCommand(*it->second, it->second, command, finished);
  if (refused) {
    const std::string cwd = it->second->shell.cwd();
    lock.unlock();
    SendDone(command.session_id(), command.command_id(), "Failed", *refused, cwd);
  }
}

std::optional<std::string> LiveSessionHost::StartCommand(Session& session,
                                                         std::shared_ptr<Session> owner,
                                                         const quell::v1::LiveCommand& command,
                                                         std::vector<std::jthread>& finished) {
  for (auto c = session.commands.begin(); c != session.commands.end();) {
    if (c->second->finished) {
      finished.push_back(std::move(c->second->thread));
      c = session.commands.erase(c);
    } else {
      ++c;
    }
  }
  if (session.commands.contains(command.command_id())) {
    return "command " + std::to_string(command.command_id()) + " is already running";
  }
  ++session.received;
  auto cmd = std::make_shared<Command>();
  cmd->id = command.command_id();
  const std::chrono::seconds limit = command.time_limit_seconds() == 0
                                         ? kDefaultTimeLimit
                                         : std::chrono::seconds(command.time_limit_seconds());
  cmd->deadline = SteadyClock::now() + limit;
  // Made here, not on the command's thread, so that the timer (woken below) sees it at once.
  cmd->output = std::make_shared<LiveOutputStream>(
      options_.max_output_bytes,
      [this, session_id = session.id, command_id = cmd->id](std::string chunk) {
        quell::v1::AgentMessage m;
        m.mutable_live_output()->set_session_id(session_id);
        m.mutable_live_output()->set_command_id(command_id);
        m.mutable_live_output()->set_text(std::move(chunk));
        Send(std::move(m));
      });
  session.commands[cmd->id] = cmd;
  Log()->info("session={} command={} by {}: {}", session.id, cmd->id, command.requested_by(),
              command.argv_size() > 0 ? command.argv(0) : "");
  cmd->thread = std::jthread(
      [this, owner = std::move(owner), cmd, command] { RunCommand(owner, cmd, command); });
  ++commands_started_;  // a new deadline, and output to flush
  cv_.notify_all();
  return std::nullopt;
}

void LiveSessionHost::OnCancel(const quell::v1::LiveCancel& cancel) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(cancel.session_id());
  if (it == sessions_.end()) {
    // A command still waiting for its session is simply dropped: the server, which asked
    // for the cancel, ends it on its side.
    if (auto parked = parked_.find(cancel.session_id()); parked != parked_.end()) {
      std::erase_if(parked->second, [&](const Parked& p) {
        return cancel.command_id() == 0 || p.command.command_id() == cancel.command_id();
      });
      if (parked->second.empty()) parked_.erase(parked);
      return;
    }
    Log()->info("cancel for session {} which is not open", cancel.session_id());
    return;
  }
  Session& session = *it->second;
  if (cancel.command_id() == 0) {
    session.ended = true;
    session.ended_by_server = true;
    cv_.notify_all();
    return;
  }
  auto c = session.commands.find(cancel.command_id());
  if (c == session.commands.end() || c->second->finished) return;
  int expected = kRunning;
  c->second->why.compare_exchange_strong(expected, kCancelledByUser);
  c->second->stop.request_stop();
}

void LiveSessionHost::RunCommand(std::shared_ptr<Session> session, std::shared_ptr<Command> cmd,
                                 quell::v1::LiveCommand request) {
  LiveCommandRequest req{
      .session_id = request.session_id(),
      .command_id = request.command_id(),
      .argv = {request.argv().begin(), request.argv().end()},
      .json = request.output_format() == "json",
      .requested_by = request.requested_by(),
      .library_sha256 = request.library_sha256(),
      .library_size = request.library_size(),
      .time_limit = request.time_limit_seconds() == 0
                        ? std::chrono::milliseconds(kDefaultTimeLimit)
                        : std::chrono::milliseconds(request.time_limit_seconds() * 1000ull),
  };
  std::shared_ptr<LiveOutputStream> output;
  {
    std::lock_guard lock(mu_);
    output = cmd->output;
  }
  LiveCommandOutcome outcome = session->shell.Execute(
      req, cmd->stop.get_token(), [&](std::string_view text) { output->Write(text); });
  {
    std::lock_guard lock(mu_);
    cmd->output.reset();  // the timer holds its own reference while it flushes
  }
  output->Finish();
  std::string status = "Completed";
  std::string error;
  if (!outcome.status.ok()) {
    const int why = cmd->why.load();
    // The script runner's own limit is the same one: either may fire first.
    if (why == kTimedOut || (why == kRunning && outcome.status.code() == StatusCode::kDeadlineExceeded)) {
      status = "TimedOut";
      error = "timed out after " + std::to_string(request.time_limit_seconds() == 0
                                                      ? kDefaultTimeLimit.count()
                                                      : request.time_limit_seconds()) +
              " s";
    } else if (why == kCancelledByUser || outcome.status.code() == StatusCode::kCancelled) {
      status = "Cancelled";
      error = "cancelled";
    } else {
      status = "Failed";
      error = outcome.status.message();
    }
  }
  Log()->info("session={} command={} {}{}{}", req.session_id, req.command_id, status,
              error.empty() ? "" : ": ", error);
  SendDone(req.session_id, req.command_id, status, error, session->shell.cwd(), &outcome);
  std::lock_guard lock(mu_);
  cmd->finished = true;
  cv_.notify_all();
}

void LiveSessionHost::TimerLoop(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const auto now = SteadyClock::now();
    auto next = now + std::chrono::hours(1);
    std::vector<std::shared_ptr<LiveOutputStream>> outputs;
    for (auto& [sid, session] : sessions_) {
      for (auto& [cid, cmd] : session->commands) {
        if (cmd->output) {
          outputs.push_back(cmd->output);
          next = std::min(next, now + kOutputDelay);
        }
        if (cmd->finished || cmd->why.load() != kRunning) continue;
        if (cmd->deadline <= now) {
          int expected = kRunning;
          if (cmd->why.compare_exchange_strong(expected, kTimedOut)) cmd->stop.request_stop();
        } else {
          next = std::min(next, cmd->deadline);
        }
      }
    }
    std::vector<quell::v1::LiveCommand> expired;
    for (auto p = parked_.begin(); p != parked_.end();) {
      std::erase_if(p->second, [&](const Parked& c) {
        if (c.until > now) return false;
        expired.push_back(c.command);
        return true;
      });
      for (const Parked& c : p->second) next = std::min(next, c.until);
      p = p->second.empty() ? parked_.erase(p) : std::next(p);
    }
    if (!expired.empty()) {
      lock.unlock();
      for (const auto& c : expired) {
        SendDone(c.session_id(), c.command_id(), "Failed",
                 "no open session " + c.session_id() + " on this device", "");
      }
      lock.lock();
    }
    if (!outputs.empty()) {
      // Sending may wait on the connection: not under the lock the commands need.
      lock.unlock();
      for (const auto& output : outputs) output->FlushOlderThan(kOutputDelay, now);
      outputs.clear();
      lock.lock();
    }
    const uint64_t started = commands_started_;
    cv_.wait_until(lock, stop, next, [&] { return commands_started_ != started; });
  }
}

}  // namespace quell::agent::live
