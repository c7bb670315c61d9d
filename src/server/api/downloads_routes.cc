// GET /api/downloads/{token}: where every download link points (investigation packages,
// live response results, collected files).
//
// The link is the credential, as with Defender's SAS links: it is signed by the server, names
// one blob and the file name to save it as, and expires (DownloadLinks). So there is no bearer
// token here, and holding a live link is enough to fetch exactly that blob, nothing else.
// Every download is written to the audit log with the address it went to.
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "server/api/api_context.h"
#include "server/blobs/blob_store.h"
#include "server/blobs/download_links.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

Response Download(ApiContext& api, Request& request) {
  if (api.blobs == nullptr || api.download_links == nullptr) {
    return Response::Error(503, "Unavailable", "downloads are not configured on this server");
  }
  Result<DownloadGrant> grant =
      api.download_links->Verify(request.path_params.at("token"), api.clock.Now());
  if (!grant.ok()) {
    if (grant.status().code() == StatusCode::kInvalidArgument) {
      return Response::Error(404, "NotFound", "no such download");
    }
    return Response::Error(403, "Forbidden", grant.status().message());
  }
  Result<std::string> path = api.blobs->PathOf(grant->sha256);
  if (!path.ok()) {
    return Response::Error(404, "NotFound", "the file of this link is no longer stored");
  }
  if (Status audited = api.store.AppendAudit(
          {.time = api.clock.Now(),
           .actor = "download-link",
           .operation = "blob.downloaded",
           .target = grant->sha256,
           .details_json = nlohmann::json{{"fileName", grant->file_name},
                                          {"remoteAddress", request.remote_address}}
                               .dump()});
      !audited.ok()) {
    // Refuse rather than hand out evidence without a record of it.
    Logger("server.api")->error("download of {} not audited: {}", grant->sha256,
                                audited.ToString());
    return Response::Error(503, "Unavailable", "the download cannot be recorded; try again");
  }
  std::string type = grant->file_name.ends_with(".zip") ? "application/zip"
                                                        : "application/octet-stream";
  return Response::File(std::move(*path), std::move(type), grant->file_name);
}

}  // namespace

void AddDownloadRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/api/downloads/{token}", [&api](Request& r) { return Download(api, r); });
}

}  // namespace quell::server
