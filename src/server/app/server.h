// quell-server as a library: options, and a Server that starts its parts in order and
// stops them in reverse. main.cc only parses flags and calls this.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace quell::server {

struct ServerOptions {
  std::string data_dir = "/var/lib/quell-server";  // quell.db, pki/, server.json
  std::string api_listen = "127.0.0.1:8443";       // REST (HTTPS); port 0 = any free port
  std::string agent_listen = "0.0.0.0:8444";       // agents (gRPC, mTLS); port 0 = any
  std::vector<std::string> tls_names;              // extra SANs for the server certificate
  int64_t action_timeout_seconds = 3 * 24 * 3600;  // Pending/InProgress -> TimeOut after this
  uint32_t heartbeat_interval_seconds = 30;        // agents heartbeat this often
  int64_t alert_dedup_window_seconds = 3600;       // repeated detections update one alert
  size_t max_body_bytes = 1 << 20;                 // larger REST bodies get 413
  size_t max_library_file_bytes = 50 << 20;        // larger live response library files: 413
  int64_t download_link_lifetime_seconds = 600;    // links from getPackageUri and the like
  int64_t live_response_idle_timeout_seconds = 1800;  // interactive sessions close when idle
  int api_threads = 2;
  // quell-sandbox for deep analysis; empty: beside quell-server, then the build tree's.
  std::string sandbox_binary;
  int64_t deep_analysis_time_limit_seconds = 120;  // a sample's wall-clock limit
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();  // Stop()

  // Opens the store, loads or creates the CA, and starts both listeners. Writes
  // <data_dir>/server.json with the bound addresses once both are listening.
  Status Start();
  // Blocks until Stop() is called (e.g. from a signal handler thread).
  void Wait();
  void Stop();

  uint16_t api_port() const;
  uint16_t agent_port() const;

 private:
  struct Parts;
  ServerOptions options_;
  std::unique_ptr<Parts> parts_;
  std::mutex mu_;
  std::condition_variable stopped_cv_;
  bool stop_requested_ = false;
};

// Opens the store in `data_dir` for the admin subcommands (token creation) that run beside
// a live server.
struct AdminResult {
  std::string secret;
};
Result<AdminResult> CreateApiTokenInDataDir(const std::string& data_dir, const std::string& name,
                                            const std::string& role);
Result<AdminResult> CreateEnrollmentTokenInDataDir(const std::string& data_dir, int uses,
                                                   int64_t ttl_seconds);

// "host:port", "[v6]:port" -> (host, port). InvalidArgument otherwise.
Result<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& text);

}  // namespace quell::server
