// Links to what actions brought back from devices: GET /api/machineactions/{id}/getPackageUri
// (the investigation package of a CollectInvestigationPackage action) and
// GET /api/machineactions/{id}/GetLiveResponseResultDownloadLink(index=N) (a GetFile's file or
// a RunScript's output). Each call issues a fresh short-lived link (DownloadLinks;
// /api/downloads/{token} serves it) and is audited, so an expired link is replaced by calling
// again, without running anything again.
#include <charconv>

#include <nlohmann/json.hpp>

#include "server/api/action_links.h"
#include "server/api/api_context.h"
#include "server/api/resource_json.h"
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

}  // namespace

Response IssueLink(ApiContext& api, const Request& request, const ApiToken& token,
                   const MachineAction& action, const ActionArtifact& artifact,
                   const std::string& file_name) {
  const UnixMillis expires = api.clock.Now() + api.download_link_lifetime_ms;
  Result<std::string> link = api.download_links->Token(
      {.sha256 = artifact.sha256, .file_name = file_name, .expires = expires});
  if (!link.ok()) return Response::FromStatus(link.status());
  if (Status audited = api.store.AppendAudit(
          {.time = api.clock.Now(),
           .actor = token.name,
           .operation = action.type == "CollectInvestigationPackage" ? "package.link_issued"
                                                                     : "action.link_issued",
           .target = action.id,
           .details_json = nlohmann::json{{"artifact", artifact.name},
                                          {"sha256", artifact.sha256},
                                          {"expires", FormatIso8601(expires)}}
                               .dump()});
      !audited.ok()) {
    return Response::Error(503, "Unavailable", "the link cannot be recorded; try again");
  }
  return Response::Json(200, {{"value", DownloadUrl(request, *link)},
                              {"expirationDateTimeUtc", FormatIso8601(expires)},
                              {"sha256", artifact.sha256},
                              {"size", artifact.size}});
}

namespace {

// The name a live response result is saved as: the fetched file's own name for GetFile,
// "<script>.output.json" for RunScript, reduced to link-safe characters.
std::string ResultFileName(const nlohmann::json& command, const std::string& artifact) {
  std::string base;
  for (const auto& p : command.value("params", nlohmann::json::array())) {
    if (!p.is_object()) continue;
    const std::string key = p.value("key", "");
    const std::string value = p.value("value", "");
    if (key == "Path") base = value.substr(value.rfind('/') + 1);
    if (key == "ScriptName") base = value + ".output.json";
  }
  std::string safe;
  for (char c : base.substr(0, 100)) {
    safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ? c : '_';
  }
  if (safe.empty() || safe.front() == '.') safe = artifact;
  return safe;
}

// GET /api/machineactions/{id}/GetLiveResponseResultDownloadLink(index=N)
Response GetLiveResponseResultLink(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  if (api.blobs == nullptr || api.download_links == nullptr) {
    return Response::Error(503, "Unavailable", "downloads are not configured on this server");
  }
  const std::string& id = request.path_params.at("id");
  const std::string& index_text = request.path_params.at("index");
  size_t index = 0;
  auto [end, err] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
  if (err != std::errc() || end != index_text.data() + index_text.size()) {
    return Response::Error(400, "InvalidArgument", "index must be a command number, not '" +
                                                       index_text + "'");
  }
  Result<MachineAction> action = api.store.GetAction(id);
  if (!action.ok()) return Response::FromStatus(action.status());
  if (action->type != "LiveResponse") {
    return Response::Error(404, "NotFound",
                           "action " + id + " is " + action->type + ", not LiveResponse");
  }
  const nlohmann::json commands = MachineActionToJson(*action)["commands"];
  if (index >= commands.size()) {
    return Response::Error(404, "NotFound", "action " + id + " has " +
                                                std::to_string(commands.size()) + " commands");
  }
  const nlohmann::json result = nlohmann::json::parse(action->result_json, nullptr, false);
  std::string name;
  if (result.is_object() && result.contains("commands") && result["commands"].is_array() &&
      index < result["commands"].size() && result["commands"][index].is_object()) {
    name = result["commands"][index].value("artifact", "");
  }
  Result<ActionArtifact> artifact =
      name.empty() ? Result<ActionArtifact>(NotFound("")) : api.store.GetActionArtifact(id, name);
  if (!artifact.ok() || !api.blobs->PathOf(artifact->sha256).ok()) {
    return Response::Error(404, "NotFound",
                           "command " + std::to_string(index) + " has no result to download (" +
                               commands[index]["commandStatus"].get<std::string>() + ")");
  }
  return IssueLink(api, request, *token, *action, *artifact,
                   ResultFileName(commands[index]["command"], name));
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
  return IssueLink(api, request, *token, *action, *artifact,
                   PackageFileName(action->computer_dns_name));
}

}  // namespace

void AddActionDownloadRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/api/machineactions/{id}/getPackageUri",
             [&api](Request& r) { return GetPackageUri(api, r); });
  router.Add("GET", "/api/machineactions/{id}/GetLiveResponseResultDownloadLink(index={index})",
             [&api](Request& r) { return GetLiveResponseResultLink(api, r); });
}

}  // namespace quell::server
