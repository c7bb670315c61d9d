#include "server/api/api_context.h"

#include <algorithm>
#include <cctype>

#include "server/auth/api_tokens.h"

namespace quell::server {

Result<ApiToken> Authorize(ApiContext& api, const http::Request& request, Role need) {
  QUELL_ASSIGN_OR_RETURN(ApiToken token,
                         AuthenticateBearer(api.store, request.Header("authorization")));
  if (!RoleAllows(token.role, need)) {
    return PermissionDenied("this needs the " + std::string(RoleName(need)) +
                            " role; the token '" + token.name + "' has " +
                            std::string(RoleName(token.role)));
  }
  return token;
}

Device WithPresence(const ApiContext& api, Device device) {
  if (api.presence != nullptr) {
    if (auto pending = api.presence->Pending(device.id)) {
      device.last_seen = std::max(device.last_seen, *pending);
    }
  }
  return device;
}

Result<std::string> FileHashParam(const http::Request& request, bool allow_md5) {
  std::string hash = request.path_params.at("hash");
  bool hex = std::all_of(hash.begin(), hash.end(),
                         [](unsigned char c) { return std::isxdigit(c) != 0; });
  bool length_ok = hash.size() == 64 || hash.size() == 40 || (allow_md5 && hash.size() == 32);
  if (!hex || !length_ok) {
    return InvalidArgument(std::string("the file must be named by its SHA-256 or SHA-1") +
                           (allow_md5 ? " or MD5" : "") + " in hex, not '" + hash + "'");
  }
  std::transform(hash.begin(), hash.end(), hash.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return hash;
}

Result<nlohmann::json> JsonObjectBody(const http::Request& request) {
  if (request.body.empty()) return InvalidArgument("a JSON object body is required");
  nlohmann::json body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return InvalidArgument("the body is not valid JSON");
  if (!body.is_object()) return InvalidArgument("the body must be a JSON object");
  return body;
}

void AddApiRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/healthz", [](http::Request&) {
    return http::Response::Json(200, {{"status", "ok"}});
  });
  AddMachineRoutes(router, api);
  AddMachineActionRoutes(router, api);
  AddAuditRoutes(router, api);
  AddMetricsRoutes(router, api);
  AddAlertRoutes(router, api);
  AddIndicatorRoutes(router, api);
  AddFileRoutes(router, api);
  AddDownloadRoutes(router, api);
  AddActionDownloadRoutes(router, api);
  AddLibraryRoutes(router, api);
  AddDeepAnalysisRoutes(router, api);
}

}  // namespace quell::server
