// The interactive live response sessions open on this agent, and the commands running in
// them. The LiveResponse action ({"Interactive": true}) opens a session with RunSession and
// stays in it until the server ends it (LiveCancel with command_id 0) or the action is
// cancelled; the channel delivers LiveCommand / LiveCancel here on its reader thread.
//
// Every command runs on a thread of its own; its output goes to the MessageSink as
// AgentMessage.live_output chunks (<= 64 KiB, best effort), then one done message with the
// status "Completed" | "Failed" | "Cancelled" | "TimedOut", the error, the session's cwd and,
// for getfile, the artifact. A command for a session that has not opened yet waits for it
// (the session's action comes first on the stream, but the executor starts it on its own
// thread) up to `session_open_wait`; a command for a session that ended, or that does not
// open in time, gets a done message "Failed": "no open session <id> on this device".
//
// Thread-safety: all public methods are thread-safe. OnCommand/OnCancel never block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "agent/channel/message_sink.h"
#include "agent/live/live_shell.h"
#include "common/status.h"
#include "quell/v1/agent.pb.h"

namespace quell::agent::live {

class LiveSessionHost {
 public:
  // `options` (and what it points at) must outlive the host.
  explicit LiveSessionHost(LiveShellOptions options,
                           std::chrono::milliseconds session_open_wait = std::chrono::seconds(10));
  ~LiveSessionHost();  // cancels and joins every command still running

  // Where output goes; nullptr drops it (no connection yet). Set by the agent once the
  // channel exists, cleared before the channel goes.
  void AttachSink(MessageSink* sink);

  // Opens session `session_id`, calls `opened`, and waits until the server ends it (returns
  // the number of commands it received) or `stop` is requested (Cancelled). Either way the
  // running commands are cancelled and waited for before it returns. AlreadyExists if the
  // session is open already.
  Result<uint32_t> RunSession(const std::string& session_id, std::stop_token stop,
                              const std::function<void()>& opened = [] {});

  void OnCommand(const quell::v1::LiveCommand& command);
  void OnCancel(const quell::v1::LiveCancel& cancel);

  // Sessions open now (tests, diagnostics).
  size_t open_sessions() const;

 private:
  struct Command;
  struct Session;
  // A command for a session that has not opened yet.
  struct Parked {
    quell::v1::LiveCommand command;
    std::chrono::steady_clock::time_point until;
  };
  // Starts `command` in `session` (REQUIRES: mu_ held); the reason when it cannot. Threads of
  // finished commands are moved to `finished`, to be joined outside the lock.
  std::optional<std::string> StartCommand(Session& session, std::shared_ptr<Session> owner,
                                          const quell::v1::LiveCommand& command,
                                          std::vector<std::jthread>& finished);
  void RunCommand(std::shared_ptr<Session> session, std::shared_ptr<Command> command,
                  quell::v1::LiveCommand request);
  void Send(quell::v1::AgentMessage message);
  void SendDone(const std::string& session_id, uint32_t command_id, const std::string& status,
                const std::string& error, const std::string& cwd,
                const LiveCommandOutcome* outcome = nullptr);
  void TimerLoop(std::stop_token stop);

  const LiveShellOptions options_;
  const std::chrono::milliseconds session_open_wait_;
  std::mutex sink_mu_;
  MessageSink* sink_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;  // a session ended, a command finished, or a deadline changed
  std::map<std::string, std::shared_ptr<Session>> sessions_;
  std::map<std::string, std::vector<Parked>> parked_;  // by session id, in arrival order
  std::deque<std::string> ended_;  // the last sessions that ended: their commands fail at once
  uint64_t commands_started_ = 0;  // guarded by mu_; wakes the timer for a new command
  std::jthread timer_;  // fires time limits, sends output that waited; stopped and joined first
};

}  // namespace quell::agent::live
