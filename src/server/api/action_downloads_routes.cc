// Links to what actions brought back from devices: GET /api/machineactions/{id}/getPackageUri
// (the investigation package of a CollectInvestigationPackage action). Each call issues a
// fresh short-lived link (DownloadLinks; /api/downloads/{token} serves it) and is audited, so
// an expired link is replaced by calling again, without collecting again.
#include <nlohmann/json.hpp>

#include "server/api/api_context.h"
#include "server/blobs/blob_store.h"
#include "server/blobs/download_links.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

// "<host>_Investigation_Package.zip" with the host name reduced to link-safe characters.
std::string PackageFileName(const std::string& computer_dns_name) {
  std::string host;
  for (char c : computer_dns_name.substr(0, 64)) {
    host += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  }
  return (host.empty() ? "Quell" : host) + "_Investigation_Package.zip";
}

// The absolute URL of `token` as the caller reached this server.
std::string DownloadUrl(const Request& request, const std::string& token) {
  const std::string path = "/api/downloads/" + token;
  const std::string host = request.Header("host");
  return host.empty() ? path : "https://" + host + path;
}

Response GetPackageUri(ApiContext& api, Request& request) {
  // The package holds user lists, logs and network state: responders and admins only.
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  if (api.blobs == nullptr || api.download_links == nullptr) {
    return Response::Error(503, "Unavailable", "downloads are not configured on this server");
  }
  const std::string& id = request.path_params.at("id");
  Result<MachineAction> action = api.store.GetAction(id);
  if (!action.ok()) return Response::FromStatus(action.status());
  if (action->type != "CollectInvestigationPackage") {
    return Response::Error(404, "NotFound",
                           "action " + id + " is " + action->type +
                               ", not CollectInvestigationPackage: it has no package");
  }
  if (action->status != ActionStatus::kSucceeded) {
    return Response::Error(404, "NotFound",
                           "the package is not available: the action is " +
                               std::string(ActionStatusName(action->status)));
  }
  const nlohmann::json result = nlohmann::json::parse(action->result_json, nullptr, false);
  const std::string name = result.is_object() ? result.value("artifactName", "") : "";
  Result<ActionArtifact> artifact = api.store.GetActionArtifact(id, name);
  if (!artifact.ok() || !api.blobs->PathOf(artifact->sha256).ok()) {
    return Response::Error(404, "NotFound", "the package of action " + id + " is not stored");
  }
  const UnixMillis expires = api.clock.Now() + api.download_link_lifetime_ms;
  Result<std::string> link = api.download_links->Token(
      {.sha256 = artifact->sha256,
       .file_name = PackageFileName(action->computer_dns_name),
       .expires = expires});
  if (!link.ok()) return Response::FromStatus(link.status());
  if (Status audited = api.store.AppendAudit(
          {.time = api.clock.Now(),
           .actor = token->name,
           .operation = "package.link_issued",
           .target = id,
           .details_json = nlohmann::json{{"sha256", artifact->sha256},
                                          {"expires", FormatIso8601(expires)}}
                               .dump()});
      !audited.ok()) {
    return Response::Error(503, "Unavailable", "the link cannot be recorded; try again");
  }
  return Response::Json(200, {{"value", DownloadUrl(request, *link)},
                              {"expirationDateTimeUtc", FormatIso8601(expires)},
                              {"sha256", artifact->sha256},
                              {"size", artifact->size}});
}

}  // namespace

void AddActionDownloadRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/api/machineactions/{id}/getPackageUri",
             [&api](Request& r) { return GetPackageUri(api, r); });
}

}  // namespace quell::server
