// quell-agent as a library: the ordered startup steps, the running agent, and an orderly stop.
// main.cc only parses flags, installs signal handling and calls Run.
//
// Startup, in order (each step's resources are released in reverse order on any exit):
//   1. state dir (0700)
//   2. firewall + isolation controller; Restore() the persisted isolation — BEFORE any network
//      traffic, so a restarted or rebooted host is isolated again before it talks to anyone
//   3. spool, detection sink, execution restriction (Restore() the persisted mode, also
//      before any network traffic), action journal, action registry
//   4. enroll if there is no identity yet (retried with backoff until it succeeds or stop)
//   5. serve: the Connect stream (reconnecting), action executor, isolation watchdog
#pragma once

#include <memory>
#include <stop_token>

#include "agent/app/agent_config.h"
#include "common/status.h"

namespace quell::agent {

class Agent {
 public:
  explicit Agent(AgentConfig config);
  ~Agent();

  // Runs until `stop` is requested (Ok) or a startup step fails (its error).
  Status Run(std::stop_token stop);

 private:
  struct Parts;
  Status PrepareStateDir();
  Status RestoreIsolation();
  Status OpenState();
  void RestoreRestriction();  // called by OpenState once the detection sink exists
  Status LoadOrEnroll(std::stop_token stop);
  void Serve(std::stop_token stop);
  void WatchIsolation(std::stop_token stop);

  const AgentConfig config_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace quell::agent
