// quell-agent as a library: the ordered startup steps, the running agent, and an orderly stop.
// main.cc only parses flags, installs signal handling and calls Run.
//
// Startup, in order (each step's resources are released in reverse order on any exit):
//   1. state dir (0700)
//   2. firewall + isolation controller; Restore() the persisted isolation — BEFORE any network
//      traffic, so a restarted or rebooted host is isolated again before it talks to anyone
//   3. spool, detection sink, indicators (the persisted set), execution restriction
//      (Restore() the persisted mode), indicator enforcement (exec gate for blocking hash
//      indicators, the nftables IP blocklist, the DNS filter for domain indicators) — all
//      before any network traffic — then the
//      action journal and the action registry
//   4. enroll if there is no identity yet (retried with backoff until it succeeds or stop)
//   5. serve: the Connect stream (reconnecting), action executor, isolation watchdog,
//      indicator tick (expiry, IP hit counters)
#pragma once

#include <memory>
#include <stop_token>

#include "agent/actions/collect_investigation_package.h"
#include "agent/app/agent_config.h"
#include "common/status.h"
#include "quell/v1/agent.pb.h"

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
  void OpenQuarantine();      // called by OpenState before RestoreRestriction
  void RestoreRestriction();  // called by OpenState once the detection sink exists
  Status RestoreIndicatorStore();       // before RestoreRestriction (the gate consults it)
  void RestoreIndicatorEnforcement();   // after RestoreRestriction (it drives the gate)
  void StartDnsFilter();  // by RestoreIndicatorEnforcement; the enforcer starts/stops it
  void StartWrittenFileWatch();  // by RestoreIndicatorEnforcement; the enforcer turns it on
  void OnIndicatorDelta(const quell::v1::IndicatorDelta& delta);  // channel reader thread
  void TickIndicators(std::stop_token stop);
  Status LoadOrEnroll(std::stop_token stop);
  void Serve(std::stop_token stop);
  void WatchIsolation(std::stop_token stop);
  void ReportFileSightings(std::stop_token stop);
  // Fetches a live response library file (channel/library_fetcher.h).
  Status FetchLibraryFile(const std::string& action_id, const std::string& name,
                          const std::string& sha256, const std::string& dest,
                          std::stop_token stop);
  // Uploads a file an action produced (ArtifactUploader, on its own channel per attempt).
  Result<SentArtifact> SendArtifact(const std::string& action_id, const std::string& name,
                                    const std::string& path, std::stop_token stop,
                                    const std::function<void(uint64_t, uint64_t)>& progress);

  const AgentConfig config_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace quell::agent
