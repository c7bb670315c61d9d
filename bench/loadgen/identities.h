// Device identities for a simulated fleet: N enrollments with one multi-use enrollment
// token, each with its own key, CSR and certificate, run in parallel with bounded
// concurrency. Optionally cached in a directory so reruns against the same server data dir
// skip enrollment.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "agent/channel/endpoint.h"
#include "agent/state/identity_store.h"
#include "common/status.h"

namespace quell::bench {

// The unique hostname simulated agent `index` reports (enrollment inventory and Hello).
std::string SimHostname(size_t index);

struct EnrollOptions {
  size_t count = 0;
  size_t concurrency = 16;   // enrollments in flight
  std::string token;         // multi-use enrollment token (needed only for missing identities)
  // Empty: no cache. Otherwise <dir>/ca.pem names the server CA the cached identities belong
  // to; a different CA (a fresh server) discards them.
  std::string cache_dir;
};

struct EnrollResult {
  std::vector<agent::Identity> identities;  // index i belongs to SimHostname(i)
  size_t enrolled = 0;                      // newly enrolled now
  size_t from_cache = 0;
  double seconds = 0;                       // wall time of the enrollments
};

// Fails with the first enrollment error (e.g. PermissionDenied when the token is used up).
Result<EnrollResult> EnrollFleet(const agent::ServerEndpoint& endpoint,
                                 const EnrollOptions& options);

}  // namespace quell::bench
