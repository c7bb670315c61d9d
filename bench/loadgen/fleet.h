// A fleet of simulated agents and the two measurements made with it: connecting N of them
// with bounded concurrency, keeping them heartbeating, and sending actions to random ones
// through the REST API while timing each until its Succeeded update is acknowledged.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/loadgen/latency_summary.h"
#include "bench/loadgen/sim_agent.h"
#include "cli/api_client.h"
#include "common/status.h"

namespace quell::bench {

struct ConnectResult {
  size_t connected = 0;
  size_t failed = 0;
  double seconds = 0;
  std::string first_error;  // empty if none failed
};

struct ActionRunOptions {
  size_t count = 1000;
  double rate_per_second = 50;     // open-loop: action k is sent at start + k / rate
  size_t rest_concurrency = 16;    // REST calls in flight at most
  std::chrono::seconds settle{30}; // how long to wait for acks after the last REST call
};

struct ActionRunResult {
  LatencySummary end_to_end;  // REST request sent -> Succeeded acked to the agent
  LatencySummary rest;        // the REST call alone (connect, TLS, request, 201)
  size_t rest_failures = 0;
  size_t unacked = 0;         // created but no ack within settle
  std::string first_error;
  double seconds = 0;
};

class Fleet final : public SimAgentObserver {
 public:
  // REQUIRES: identities.size() agents; identity i belongs to SimHostname(i).
  Fleet(const agent::ServerEndpoint& endpoint, const std::vector<agent::Identity>& identities);
  ~Fleet() override;  // stops the heartbeats; streams are cancelled and awaited

  // Starts every agent, at most `concurrency` waiting for Welcome at a time, and waits up
  // to `timeout` for each to be welcomed or to fail.
  ConnectResult Connect(size_t concurrency, std::chrono::seconds timeout);

  // Sends each welcomed agent a heartbeat every `interval`, spread evenly over the interval
  // (0 = the interval the server announced in Welcome).
  void StartHeartbeats(std::chrono::seconds interval);

  ActionRunResult RunActions(const cli::ApiClient& api, const ActionRunOptions& options);

  size_t live() const { return live_.load(); }
  size_t ended_after_welcome() const { return ended_after_welcome_.load(); }
  uint64_t heartbeats_sent() const { return heartbeats_sent_.load(); }

  // SimAgentObserver
  void OnWelcome(size_t index, uint32_t heartbeat_interval_seconds) override;
  void OnSucceededAcked(size_t index, const std::string& action_id, SteadyTime at) override;
  void OnEnded(size_t index, const grpc::Status& status, bool welcomed) override;

 private:
  std::vector<std::unique_ptr<SimAgent>> agents_;
  std::vector<std::string> device_ids_;     // by agent index
  std::vector<std::atomic<uint8_t>> state_;  // 0 starting, 1 welcomed, 2 ended

  std::mutex mu_;
  std::condition_variable cv_;
  size_t started_ = 0;            // agents whose stream was opened; guarded by mu_
  size_t settled_ = 0;            // welcomed or ended before Welcome; guarded by mu_
  size_t ended_ = 0;              // guarded by mu_
  std::string first_error_;       // guarded by mu_
  std::map<std::string, SteadyTime> acked_;  // action id -> ack time; guarded by mu_

  std::atomic<size_t> live_{0};
  std::atomic<size_t> ended_after_welcome_{0};
  std::atomic<uint32_t> announced_heartbeat_seconds_{0};
  std::atomic<uint64_t> heartbeats_sent_{0};
  std::jthread heartbeats_;
};

}  // namespace quell::bench
