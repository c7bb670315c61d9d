// quell-loadgen: connects N simulated agents to a running quell-server and measures
//  a. the server's RSS and CPU while they idle with heartbeats, and
//  b. the latency from a REST call creating a DiagnosticNoop action to the moment the agent
//     holds the server's ack of its Succeeded update (the server persisted Succeeded).
// Prints a human summary and one JSON line (also appended to --json-out).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/loadgen/fleet.h"
#include "bench/loadgen/identities.h"
#include "bench/loadgen/proc_sampler.h"
#include "common/files.h"
#include "common/logging.h"

namespace {

using quell::bench::ProcSample;

double Mib(uint64_t bytes) { return std::round(static_cast<double>(bytes) / 1048576.0 * 10) / 10; }
double Round1(double v) { return std::round(v * 10) / 10; }
std::string F(double v) { return fmt::format("{:.1f}", v); }

int Fail(const std::string& what) {
  std::cerr << "quell-loadgen: " << what << "\n";
  return 1;
}

void Say(const std::string& line) {
  std::time_t now = std::time(nullptr);
  char stamp[16];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&now));
  std::cout << "[" << stamp << "] " << line << std::endl;
}

struct Options {
  std::string server_json;
  std::string agent_target, api_url, ca_file;
  int server_pid = 0;
  std::string api_token, enrollment_token, identity_cache, json_out;
  size_t agents = 1000;
  int heartbeat_seconds = 0;
  int idle_seconds = 60;
  size_t actions = 1000;
  double rate = 50;
  size_t rest_concurrency = 16;
  size_t enroll_concurrency = 16;
  size_t connect_concurrency = 200;
  int connect_timeout_seconds = 900;
  int settle_seconds = 60;
};

// Idle: samples the server every second for `seconds`.
struct IdleResult {
  ProcSample first, last;
  uint64_t rss_max = 0;
};
quell::Result<IdleResult> MeasureIdle(pid_t pid, int seconds) {
  IdleResult out;
  QUELL_ASSIGN_OR_RETURN(out.first, quell::bench::SampleProcess(pid));
  out.last = out.first;
  out.rss_max = out.first.rss_bytes;
  for (int s = 0; s < seconds; ++s) {
    std::this_thread::sleep_until(out.first.at + std::chrono::seconds(s + 1));
    QUELL_ASSIGN_OR_RETURN(out.last, quell::bench::SampleProcess(pid));
    out.rss_max = std::max(out.rss_max, out.last.rss_bytes);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quell-loadgen: simulated agents against a running quell-server"};
  Options o;
  app.add_option("--server-json", o.server_json,
                 "The server's <data-dir>/server.json (gives --agent, --api, --ca, --server-pid)");
  app.add_option("--agent", o.agent_target, "Agent gateway host:port");
  app.add_option("--api", o.api_url, "REST base URL, https://host:port");
  app.add_option("--ca", o.ca_file, "The server's CA certificate (PEM)");
  app.add_option("--server-pid", o.server_pid, "quell-server's pid, for RSS and CPU");
  app.add_option("--api-token", o.api_token, "An API token with role responder or admin")
      ->required();
  app.add_option("--enrollment-token", o.enrollment_token,
                 "A multi-use enrollment token (uses >= --agents unless identities are cached)");
  app.add_option("--identity-cache", o.identity_cache,
                 "Directory caching device identities across runs against one server data dir");
  app.add_option("--agents,-n", o.agents, "Simulated agents")->capture_default_str();
  app.add_option("--heartbeat-seconds", o.heartbeat_seconds,
                 "Heartbeat interval; 0 = the one the server announces")
      ->capture_default_str();
  app.add_option("--idle-seconds", o.idle_seconds, "How long to sample the idle fleet")
      ->capture_default_str();
  app.add_option("--actions", o.actions, "DiagnosticNoop actions to time")->capture_default_str();
  app.add_option("--rate", o.rate, "Actions per second (open loop)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--rest-concurrency", o.rest_concurrency, "REST calls in flight at most")
      ->capture_default_str();
  app.add_option("--enroll-concurrency", o.enroll_concurrency, "Enrollments in flight")
      ->capture_default_str();
  app.add_option("--connect-concurrency", o.connect_concurrency,
                 "Streams opening (awaiting Welcome) at a time")
      ->capture_default_str();
  app.add_option("--connect-timeout-seconds", o.connect_timeout_seconds)->capture_default_str();
  app.add_option("--settle-seconds", o.settle_seconds,
                 "How long to wait for outstanding acks after the last REST call")
      ->capture_default_str();
  app.add_option("--json-out", o.json_out, "Append the JSON result line to this file");
  CLI11_PARSE(app, argc, argv);
  quell::SetLogLevel("warn");

  auto fd_limit = quell::bench::RaiseFileLimit();
  if (!fd_limit.ok()) return Fail(fd_limit.status().ToString());
  if (*fd_limit < o.agents + 256) {
    return Fail("RLIMIT_NOFILE is " + std::to_string(*fd_limit) + ", too low for " +
                std::to_string(o.agents) + " agents (one socket each); raise the hard limit");
  }

  if (!o.server_json.empty()) {
    auto text = quell::ReadFile(o.server_json);
    if (!text.ok()) return Fail(text.status().ToString());
    auto info = nlohmann::json::parse(*text, nullptr, false);
    if (!info.is_object()) return Fail(o.server_json + " is not JSON");
    if (o.agent_target.empty()) o.agent_target = info.value("agent", "");
    if (o.api_url.empty()) o.api_url = "https://" + info.value("api", "");
    if (o.ca_file.empty()) o.ca_file = info.value("caCertificate", "");
    if (o.server_pid == 0) o.server_pid = info.value("pid", 0);
  }
  // The gateway may listen on 0.0.0.0; the fleet always dials loopback.
  if (o.agent_target.starts_with("0.0.0.0:")) o.agent_target = "127.0.0.1:" + o.agent_target.substr(8);
  if (o.agent_target.empty() || o.api_url.empty() || o.ca_file.empty() || o.server_pid == 0) {
    return Fail("need --server-json, or --agent, --api, --ca and --server-pid");
  }
  auto ca_pem = quell::ReadFile(o.ca_file);
  if (!ca_pem.ok()) return Fail(ca_pem.status().ToString());

  quell::agent::ServerEndpoint endpoint{
      .target = o.agent_target, .server_name = "quell-server", .ca_pem = *ca_pem};
  quell::cli::ApiClient api({.base_url = o.api_url, .token = o.api_token, .ca_file = o.ca_file});
  nlohmann::json out = {{"agents", o.agents},
                        {"heartbeatSeconds", o.heartbeat_seconds},
                        {"idleSeconds", o.idle_seconds},
                        {"actions", o.actions},
                        {"ratePerSecond", o.rate},
                        {"cpus", std::thread::hardware_concurrency()},
                        {"loadAverageAtStart", quell::bench::LoadAverage()}};
  Say("server pid " + std::to_string(o.server_pid) + ", agents " + o.agent_target + ", API " +
      o.api_url + "; load average " + quell::bench::LoadAverage());

  // 1. Identities.
  auto enrolled = quell::bench::EnrollFleet(endpoint, {.count = o.agents,
                                                       .concurrency = o.enroll_concurrency,
                                                       .token = o.enrollment_token,
                                                       .cache_dir = o.identity_cache});
  if (!enrolled.ok()) return Fail(enrolled.status().ToString());
  Say("identities: " + std::to_string(enrolled->enrolled) + " enrolled in " +
      F(Round1(enrolled->seconds)) + " s, " + std::to_string(enrolled->from_cache) +
      " from cache");
  out["enroll"] = {{"enrolled", enrolled->enrolled},
                   {"fromCache", enrolled->from_cache},
                   {"seconds", Round1(enrolled->seconds)}};

  // 2. Connect.
  auto before_connect = quell::bench::SampleProcess(o.server_pid);
  if (!before_connect.ok()) return Fail(before_connect.status().ToString());
  auto fleet = std::make_unique<quell::bench::Fleet>(endpoint, enrolled->identities);
  enrolled->identities.clear();
  enrolled->identities.shrink_to_fit();
  quell::bench::ConnectResult connected =
      fleet->Connect(o.connect_concurrency, std::chrono::seconds(o.connect_timeout_seconds));
  Say("connected " + std::to_string(connected.connected) + "/" + std::to_string(o.agents) +
      " in " + F(Round1(connected.seconds)) + " s" +
      (connected.first_error.empty() ? "" : "; first failure: " + connected.first_error));
  out["connect"] = {{"connected", connected.connected},
                    {"failed", connected.failed},
                    {"seconds", Round1(connected.seconds)},
                    {"serverRssBeforeMiB", Mib(before_connect->rss_bytes)}};
  if (!connected.first_error.empty()) out["connect"]["firstError"] = connected.first_error;

  // 3. Idle with heartbeats.
  fleet->StartHeartbeats(std::chrono::seconds(o.heartbeat_seconds));
  auto self_before = quell::bench::SampleProcess(getpid());
  auto idle = MeasureIdle(o.server_pid, o.idle_seconds);
  if (!idle.ok()) return Fail("server died while idle: " + idle.status().ToString());
  auto self_after = quell::bench::SampleProcess(getpid());
  double idle_cpu = quell::bench::CpuPercent(idle->first, idle->last);
  Say("idle " + std::to_string(o.idle_seconds) + " s with heartbeats (" +
      std::to_string(fleet->heartbeats_sent()) + " sent so far): server RSS " +
      F(Mib(idle->last.rss_bytes)) + " MiB (max " +
      F(Mib(idle->rss_max)) + "), CPU " + F(Round1(idle_cpu)) +
      "% of one core, " + std::to_string(idle->last.threads) + " threads; load average " +
      quell::bench::LoadAverage());
  out["idle"] = {{"serverRssMiB", Mib(idle->last.rss_bytes)},
                 {"serverRssMaxMiB", Mib(idle->rss_max)},
                 {"serverCpuPercent", Round1(idle_cpu)},
                 {"serverThreads", idle->last.threads},
                 {"loadgenCpuPercent",
                  self_before.ok() && self_after.ok()
                      ? Round1(quell::bench::CpuPercent(*self_before, *self_after))
                      : -1.0},
                 {"loadgenRssMiB", self_after.ok() ? Mib(self_after->rss_bytes) : -1.0},
                 {"liveAgents", fleet->live()},
                 {"loadAverage", quell::bench::LoadAverage()}};

  // 4. Actions.
  auto before_actions = quell::bench::SampleProcess(o.server_pid);
  quell::bench::ActionRunResult run =
      fleet->RunActions(api, {.count = o.actions,
                              .rate_per_second = o.rate,
                              .rest_concurrency = o.rest_concurrency,
                              .settle = std::chrono::seconds(o.settle_seconds)});
  auto after_actions = quell::bench::SampleProcess(o.server_pid);
  double action_cpu = before_actions.ok() && after_actions.ok()
                          ? quell::bench::CpuPercent(*before_actions, *after_actions)
                          : -1.0;
  auto& e = run.end_to_end;
  auto& r = run.rest;
  Say("actions: " + std::to_string(e.count) + "/" + std::to_string(o.actions) +
      " Succeeded and acked; REST->Succeeded p50 " + F(Round1(e.p50_ms)) +
      " ms, p90 " + F(Round1(e.p90_ms)) + ", p99 " +
      F(Round1(e.p99_ms)) + ", max " + F(Round1(e.max_ms)) +
      "; REST call alone p50 " + F(Round1(r.p50_ms)) + " ms, p99 " +
      F(Round1(r.p99_ms)) + "; server CPU " + F(Round1(action_cpu)) +
      "%; " + std::to_string(run.rest_failures) + " REST failures, " +
      std::to_string(run.unacked) + " unacked" +
      (run.first_error.empty() ? "" : "; first error: " + run.first_error));
  out["latencyMs"] = quell::bench::ToJson(e);
  out["restMs"] = quell::bench::ToJson(r);
  out["actionsRun"] = {{"seconds", Round1(run.seconds)},
                       {"restFailures", run.rest_failures},
                       {"unacked", run.unacked},
                       {"serverCpuPercent", Round1(action_cpu)},
                       {"serverRssMiB", after_actions.ok() ? Mib(after_actions->rss_bytes) : -1.0}};
  if (!run.first_error.empty()) out["actionsRun"]["firstError"] = run.first_error;
  out["agentsLostDuringRun"] = fleet->ended_after_welcome();
  out["loadAverageAtEnd"] = quell::bench::LoadAverage();

  bool complete = connected.failed == 0 && run.rest_failures == 0 && run.unacked == 0 &&
                  fleet->ended_after_welcome() == 0;
  bool rss_ok = idle->rss_max < (1ull << 30);
  bool p99_ok = e.count > 0 && e.p99_ms < 250;
  out["complete"] = complete;
  out["goal"] = {{"rssUnder1GiB", rss_ok}, {"p99Under250ms", p99_ok}};
  Say(std::string("goal (RSS < 1 GiB, p99 < 250 ms): RSS ") + (rss_ok ? "met" : "MISSED") +
      ", p99 " + (p99_ok ? "met" : "MISSED") +
      (complete ? "" : "; the run was INCOMPLETE (failed connects, lost agents or lost actions)"));
  std::cout << out.dump() << std::endl;
  if (!o.json_out.empty()) {
    std::ofstream(o.json_out, std::ios::app) << out.dump() << "\n";
  }
  Say("closing " + std::to_string(fleet->live()) + " streams");
  fleet.reset();
  return complete ? 0 : 1;
}
