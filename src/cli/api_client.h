// The HTTPS client the CLI uses to call the server's REST API. One connection per request:
// the CLI makes few calls, and a fresh connection keeps failures independent and simple.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"

namespace quell::cli {

struct ApiClientOptions {
  std::string base_url;  // "https://127.0.0.1:8443", "https://[::1]:8443", "https://host/prefix"
  std::string token;     // sent as "Authorization: Bearer <token>" when not empty
  std::string ca_file;   // PEM CA to trust (the server's own CA); empty = system roots
  bool insecure = false;  // skip certificate and host verification. For debugging only: it
                          // lets anyone on the path read the token and forge answers.
  std::chrono::seconds timeout{30};  // for the whole exchange after name resolution
  size_t max_response_bytes = 64 << 20;  // larger response bodies fail with ResourceExhausted
};

struct ApiResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// The parts of a base URL. Only https is accepted: the API carries bearer tokens.
struct ApiUrl {
  std::string host;       // without brackets for IPv6
  uint16_t port = 443;
  std::string base_path;  // "" or "/prefix" (no trailing slash)
};
Result<ApiUrl> ParseApiUrl(const std::string& url);

struct DownloadTarget;

class ApiClient {
 public:
  // Bytes received so far and the total (0 when the server did not say).
  using Progress = std::function<void(uint64_t received, uint64_t total)>;

  explicit ApiClient(ApiClientOptions options);

  // Sends one request; `target` starts with '/' and is appended to the URL's base path.
  // A non-2xx answer is still an ApiResponse. Errors are for transport problems, with
  // messages meant for a person: InvalidArgument (bad URL, method or target; unreadable CA
  // file), Unavailable ("cannot connect to 127.0.0.1:8443: Connection refused", resolution,
  // connection lost), Unauthenticated ("TLS certificate verification failed: ..."),
  // DeadlineExceeded (timeout), ResourceExhausted (response over max_response_bytes).
  // Sends "Content-Type: application/json" with a non-empty body.
  // Thread-compatible: concurrent Send()s on one client are safe (no shared mutable state).
  Result<ApiResponse> Send(const std::string& method, const std::string& target,
                           const std::string& body = "") const;

  // GETs `target` and streams a 2xx body into the file at `path` (never all in memory; no
  // size limit). It is written as "<path>.part" and renamed when complete, so an interrupted
  // download never leaves a truncated file under the final name. The timeout applies to each
  // read, not the whole transfer. On a non-2xx answer nothing is written and the ApiResponse
  // body holds the error.
  Result<ApiResponse> Download(const std::string& target, const std::string& path,
                               const Progress& progress = {}) const;
  // The same for a request with a body (e.g. a POST whose answer is a file).
  Result<ApiResponse> Download(const std::string& method, const std::string& target,
                               const std::string& body, const std::string& path,
                               const Progress& progress = {}) const;

 private:
  Result<ApiResponse> Perform(const std::string& method, const std::string& target,
                              const std::string& body, const DownloadTarget* download) const;

  ApiClientOptions options_;
};

}  // namespace quell::cli
