// quell-server: the control plane. `serve` runs it; `token create` and
// `enrollment-token create` are admin commands that work beside a running server.
#include <CLI/CLI.hpp>
#include <absl/synchronization/mutex.h>
#include <signal.h>

#include <iostream>
#include <thread>

#include "common/logging.h"
#include "server/app/server.h"

namespace {

int Fail(const quell::Status& status) {
  std::cerr << "quell-server: " << status.message() << "\n";
  return 1;
}

// Blocks SIGINT/SIGTERM in every thread and turns them into server.Stop() on one thread.
std::jthread StopOnSignal(quell::server::Server& server) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return std::jthread([&server, set] {
    int sig = 0;
    sigwait(&set, &sig);
    quell::Logger("server")->info("signal {} received, stopping", sig);
    server.Stop();
  });
}

}  // namespace

int main(int argc, char** argv) {
  // gRPC uses absl::Mutex, whose deadlock detection (on in Debian's Abseil) costs time per
  // lock that grows with the number of live mutexes: ~5 % of server CPU at 10,000 agents.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"quell-server: Quell's control plane (REST API, agent gateway, action center)"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();

  quell::server::ServerOptions options;
  auto* serve = app.add_subcommand("serve", "Run the server");
  serve->add_option("--data-dir", options.data_dir, "Database, PKI and state")
      ->capture_default_str();
  serve->add_option("--api-listen", options.api_listen, "REST API address (HTTPS)")
      ->capture_default_str();
  serve->add_option("--agent-listen", options.agent_listen, "Agent gateway address (gRPC, mTLS)")
      ->capture_default_str();
  serve->add_option("--tls-san", options.tls_names,
                    "Extra DNS name or IP for the server certificate (repeatable)");
  serve->add_option("--action-timeout-seconds", options.action_timeout_seconds,
                    "Open actions time out after this long")
      ->capture_default_str()
      ->check(CLI::Range(1LL, 365LL * 24 * 3600));
  serve->add_option("--heartbeat-interval-seconds", options.heartbeat_interval_seconds,
                    "Agent heartbeat interval; a device is Inactive after three missed")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3600u));
  serve->add_option("--alert-dedup-window-seconds", options.alert_dedup_window_seconds,
                    "Repeated detections (same device and dedup key) within this window of an "
                    "open alert's last activity update it instead of raising a new alert")
      ->capture_default_str()
      ->check(CLI::Range(0LL, 30LL * 24 * 3600));
  serve->add_option("--max-body-bytes", options.max_body_bytes, "Largest REST request body")
      ->capture_default_str();
  serve->add_option("--max-library-file-bytes", options.max_library_file_bytes,
                    "Largest live response library file (POST /api/libraryfiles)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{4} << 30));
  serve->add_option("--download-link-lifetime-seconds", options.download_link_lifetime_seconds,
                    "How long a download link (getPackageUri, live response results) works")
      ->capture_default_str()
      ->check(CLI::Range(1LL, 7LL * 24 * 3600));
  serve->add_option("--live-response-idle-timeout-seconds",
                    options.live_response_idle_timeout_seconds,
                    "An interactive live response session without input closes after this")
      ->capture_default_str()
      ->check(CLI::Range(10LL, 24LL * 3600));
  serve->add_option("--sandbox-binary", options.sandbox_binary,
                    "quell-sandbox for deep analysis (default: beside quell-server)");
  serve->add_option("--deep-analysis-time-limit-seconds",
                    options.deep_analysis_time_limit_seconds,
                    "How long a sample may run in the sandbox")
      ->capture_default_str()
      ->check(CLI::Range(5LL, 3600LL));

  std::string data_dir = "/var/lib/quell-server";
  auto* token = app.add_subcommand("token", "API tokens")->require_subcommand(1);
  auto* token_create = token->add_subcommand("create", "Create an API token; prints its secret");
  std::string token_name, token_role = "viewer";
  token_create->add_option("--data-dir", data_dir)->capture_default_str();
  token_create->add_option("--name", token_name, "Who uses it (recorded as requestor)")
      ->required();
  token_create->add_option("--role", token_role, "viewer, responder or admin")
      ->capture_default_str();

  auto* enroll = app.add_subcommand("enrollment-token", "Agent enrollment tokens")
                     ->require_subcommand(1);
  auto* enroll_create =
      enroll->add_subcommand("create", "Create an enrollment token; prints its secret");
  int uses = 1;
  int64_t ttl_seconds = 24 * 3600;
  enroll_create->add_option("--data-dir", data_dir)->capture_default_str();
  enroll_create->add_option("--uses", uses, "How many agents may enroll with it")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  enroll_create->add_option("--ttl-seconds", ttl_seconds, "Lifetime")
      ->capture_default_str()
      ->check(CLI::Range(1LL, 365LL * 24 * 3600));

  CLI11_PARSE(app, argc, argv);
  if (!quell::SetLogLevel(log_level)) {
    std::cerr << "quell-server: unknown log level '" << log_level << "'\n";
    return 2;
  }

  if (*token_create) {
    auto r = quell::server::CreateApiTokenInDataDir(data_dir, token_name, token_role);
    if (!r.ok()) return Fail(r.status());
    std::cout << r->secret << "\n";
    return 0;
  }
  if (*enroll_create) {
    auto r = quell::server::CreateEnrollmentTokenInDataDir(data_dir, uses, ttl_seconds);
    if (!r.ok()) return Fail(r.status());
    std::cout << r->secret << "\n";
    return 0;
  }

  quell::server::Server server(options);
  std::jthread signals = StopOnSignal(server);
  if (quell::Status s = server.Start(); !s.ok()) {
    server.Stop();
    pthread_kill(signals.native_handle(), SIGTERM);
    return Fail(s);
  }
  server.Wait();
  return 0;
}
