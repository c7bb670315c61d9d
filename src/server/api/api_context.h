// What the REST routes work with, and the checks every route starts with.
#pragma once

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "server/actions/action_center.h"
#include "server/alerts/alert_service.h"
#include "server/api/http_types.h"
#include "server/api/router.h"
#include "server/gateway/presence.h"
#include "server/gateway/session_registry.h"
#include "server/store/store.h"

namespace quell::server {

class BlobStore;
class DeepAnalysisService;
class DownloadLinks;
class IndicatorPublisher;

struct ApiContext {
  Store& store;
  ActionCenter& actions;
  SessionRegistry& sessions;
  const Clock& clock;
  UnixMillis inactive_after_ms = 90'000;  // healthStatus turns Inactive after this silence
  const Presence* presence = nullptr;     // heartbeats not yet flushed to the store
  AlertService* alerts = nullptr;         // nullptr: PATCH /api/alerts answers 503
  // Told about indicator and device-group changes; nullptr: agents are not updated live.
  IndicatorPublisher* indicators = nullptr;
  // Artifacts from devices and the links that hand them out; nullptr: downloads answer 503.
  BlobStore* blobs = nullptr;
  const DownloadLinks* download_links = nullptr;
  UnixMillis download_link_lifetime_ms = 10 * 60 * 1000;  // getPackageUri and the like
  size_t max_live_response_sessions = 25;  // open LiveResponse actions fleet-wide (Defender's)
  // The largest live response library file POST /api/libraryfiles accepts (413 beyond).
  // The upload route's body limit is derived from it when the routes are added: set it
  // before AddApiRoutes.
  size_t max_library_file_bytes = 50 << 20;
  // Detonates samples in quell-sandbox; nullptr: deep analysis answers 503.
  DeepAnalysisService* deep_analysis = nullptr;
};

// The device as the API shows it: the stored record with the newest last-seen time.
Device WithPresence(const ApiContext& api, Device device);

// Authenticates the bearer token and checks its role. On failure, `error` holds the 401/403
// response to return.
Result<ApiToken> Authorize(ApiContext& api, const http::Request& request, Role need);

// The {hash} of an /api/files route, lowercased; InvalidArgument unless it is a SHA-256 or
// SHA-1 (or, with allow_md5, an MD5) in hex.
Result<std::string> FileHashParam(const http::Request& request, bool allow_md5);

// The request body as a JSON object; InvalidArgument for malformed JSON, a non-object, or a
// missing body on POST.
Result<nlohmann::json> JsonObjectBody(const http::Request& request);

// Route groups, one file each.
void AddMachineRoutes(http::Router& router, ApiContext& api);        // machines_routes.cc
void AddMachineActionRoutes(http::Router& router, ApiContext& api);  // machine_actions_routes.cc
void AddAuditRoutes(http::Router& router, ApiContext& api);          // audit_routes.cc
void AddMetricsRoutes(http::Router& router, ApiContext& api);        // metrics_routes.cc
void AddAlertRoutes(http::Router& router, ApiContext& api);          // alerts_routes.cc
void AddIndicatorRoutes(http::Router& router, ApiContext& api);      // indicators_routes.cc
void AddFileRoutes(http::Router& router, ApiContext& api);           // files_routes.cc
void AddDownloadRoutes(http::Router& router, ApiContext& api);       // downloads_routes.cc
void AddActionDownloadRoutes(http::Router& router, ApiContext& api); // action_downloads_routes.cc
void AddLibraryRoutes(http::Router& router, ApiContext& api);        // library_routes.cc
void AddDeepAnalysisRoutes(http::Router& router, ApiContext& api);   // deep_analysis_routes.cc

// All of the above, plus GET /healthz.
void AddApiRoutes(http::Router& router, ApiContext& api);

}  // namespace quell::server
