#include "bench/loadgen/fleet.h"

#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>

#include "bench/loadgen/identities.h"

namespace quell::bench {
namespace {

double MillisBetween(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

constexpr uint8_t kStarting = 0, kWelcomed = 1, kEnded = 2;

}  // namespace

Fleet::Fleet(const agent::ServerEndpoint& endpoint,
             const std::vector<agent::Identity>& identities)
    : state_(identities.size()) {
  agents_.reserve(identities.size());
  device_ids_.reserve(identities.size());
  for (size_t i = 0; i < identities.size(); ++i) {
    quell::v1::Inventory inventory;
    inventory.set_hostname(SimHostname(i));
    inventory.set_os_platform("Linux");
    inventory.set_os_id("loadgen");
    inventory.set_agent_version("quell-loadgen");
    inventory.add_ip_addresses("127.0.0.1");
    agents_.push_back(
        std::make_unique<SimAgent>(i, endpoint, identities[i], std::move(inventory), *this));
    device_ids_.push_back(identities[i].device_id);
  }
}

Fleet::~Fleet() {
  if (heartbeats_.joinable()) {
    heartbeats_.request_stop();
    heartbeats_.join();
  }
  for (size_t i = 0; i < started_; ++i) agents_[i]->Stop();
  std::unique_lock lock(mu_);
  bool all_done = cv_.wait_for(lock, std::chrono::seconds(20), [&] { return ended_ == started_; });
  if (!all_done) {
    // A stream that never reported OnDone may still call into its reactor: leak the agents
    // rather than free memory gRPC can still touch.
    for (auto& agent : agents_) (void)agent.release();
  }
}

ConnectResult Fleet::Connect(size_t concurrency, std::chrono::seconds timeout) {
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + timeout;
  for (size_t i = 0; i < agents_.size(); ++i) {
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_until(lock, deadline, [&] { return started_ - settled_ < concurrency; })) {
        break;
      }
      ++started_;
    }
    agents_[i]->Start();
  }
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return settled_ == agents_.size(); });
  ConnectResult result;
  result.connected = live_.load();
  result.failed = agents_.size() - result.connected;
  result.first_error = first_error_;
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void Fleet::StartHeartbeats(std::chrono::seconds interval) {
  heartbeats_ = std::jthread([this, interval](std::stop_token stop) {
    std::chrono::duration<double> period = interval;
    if (interval.count() == 0) {
      uint32_t announced = announced_heartbeat_seconds_.load();
      period = std::chrono::seconds(announced == 0 ? 30 : announced);
    }
    const size_t n = agents_.size();
    auto start = std::chrono::steady_clock::now();
    uint64_t sent = 0;  // heartbeats due so far, across rounds; agent = sent % n
    while (!stop.stop_requested() && n > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      double rounds = (std::chrono::steady_clock::now() - start) / period;
      auto due = static_cast<uint64_t>(rounds * static_cast<double>(n));
      for (; sent < due; ++sent) {
        size_t index = sent % n;
        if (state_[index].load() != kWelcomed) continue;
        agents_[index]->SendHeartbeat();
        ++heartbeats_sent_;
      }
    }
  });
}

ActionRunResult Fleet::RunActions(const cli::ApiClient& api, const ActionRunOptions& options) {
  ActionRunResult result;
  std::vector<size_t> live;
  for (size_t i = 0; i < agents_.size(); ++i) {
    if (state_[i].load() == kWelcomed) live.push_back(i);
  }
  if (live.empty()) {
    result.first_error = "no connected agent";
    return result;
  }
  std::mt19937_64 random(42);  // the same targets on every run of the same fleet
  std::uniform_int_distribution<size_t> pick(0, live.size() - 1);
  std::vector<size_t> targets(options.count);
  for (size_t& t : targets) t = live[pick(random)];

  struct Sent {
    SteadyTime at;
    double rest_ms = 0;
    std::string action_id;  // empty if the REST call failed
  };
  std::vector<Sent> sent(options.count);
  std::atomic<size_t> next{0};
  std::mutex error_mu;
  auto start = std::chrono::steady_clock::now();
  auto worker = [&] {
    for (size_t k = next++; k < options.count; k = next++) {
      auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::duration<double>(static_cast<double>(k) /
                                                           options.rate_per_second));
      std::this_thread::sleep_until(due);
      Sent& s = sent[k];
      s.at = std::chrono::steady_clock::now();
      Result<cli::ApiResponse> response =
          api.Send("POST", "/api/machines/" + device_ids_[targets[k]] + "/diagnosticNoop",
                   R"({"Comment":"quell-loadgen"})");
      s.rest_ms = MillisBetween(s.at, std::chrono::steady_clock::now());
      std::string error;
      if (!response.ok()) {
        error = response.status().ToString();
      } else if (response->status != 201) {
        error = "HTTP " + std::to_string(response->status) + ": " + response->body;
      } else {
        nlohmann::json body = nlohmann::json::parse(response->body, nullptr, false);
        if (body.is_object() && body.contains("id") && body["id"].is_string()) {
          s.action_id = body["id"].get<std::string>();
        } else {
          error = "201 without an action id: " + response->body;
        }
      }
      if (!error.empty()) {
        std::lock_guard lock(error_mu);
        ++result.rest_failures;
        if (result.first_error.empty()) result.first_error = error;
      }
    }
  };
  {
    std::vector<std::jthread> workers;
    for (size_t t = 0; t < std::max<size_t>(1, options.rest_concurrency); ++t) {
      workers.emplace_back(worker);
    }
  }

  std::vector<double> end_to_end, rest;
  {
    std::unique_lock lock(mu_);
    auto all_acked = [&] {
      for (const Sent& s : sent) {
        if (!s.action_id.empty() && !acked_.contains(s.action_id)) return false;
      }
      return true;
    };
    cv_.wait_for(lock, options.settle, all_acked);
    for (const Sent& s : sent) {
      if (s.action_id.empty()) continue;
      rest.push_back(s.rest_ms);
      auto it = acked_.find(s.action_id);
      if (it == acked_.end()) {
        ++result.unacked;
        continue;
      }
      end_to_end.push_back(MillisBetween(s.at, it->second));
    }
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.end_to_end = Summarize(std::move(end_to_end));
  result.rest = Summarize(std::move(rest));
  return result;
}

void Fleet::OnWelcome(size_t index, uint32_t heartbeat_interval_seconds) {
  announced_heartbeat_seconds_.store(heartbeat_interval_seconds);
  state_[index].store(kWelcomed);
  ++live_;
  std::lock_guard lock(mu_);
  ++settled_;
  cv_.notify_all();
}

void Fleet::OnSucceededAcked(size_t, const std::string& action_id, SteadyTime at) {
  std::lock_guard lock(mu_);
  acked_.emplace(action_id, at);
  cv_.notify_all();
}

void Fleet::OnEnded(size_t index, const grpc::Status& status, bool welcomed) {
  state_[index].store(kEnded);
  std::lock_guard lock(mu_);
  if (welcomed) {
    --live_;
    ++ended_after_welcome_;
  } else {
    ++settled_;
  }
  ++ended_;
  if (first_error_.empty() && !status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    first_error_ = SimHostname(index) + ": " + std::to_string(status.error_code()) + " " +
                   status.error_message();
  }
  cv_.notify_all();
}

}  // namespace quell::bench
