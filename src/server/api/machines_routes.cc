// /api/machines: the device inventory, and one POST route per action type in the catalog
// (POST /api/machines/{id}/isolate, .../unisolate, ...), plus offboarding.
#include "common/logging.h"
#include "server/api/api_context.h"
#include "server/api/resource_json.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

Response ListMachines(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<std::vector<Device>> devices = api.store.ListDevices();
  if (!devices.ok()) return Response::FromStatus(devices.status());
  nlohmann::json value = nlohmann::json::array();
  UnixMillis now = api.clock.Now();
  for (const Device& d : *devices) {
    value.push_back(MachineToJson(WithPresence(api, d), now, api.inactive_after_ms));
  }
  return Response::Json(200, {{"value", value}});
}

Response GetMachine(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<Device> device = api.store.GetDevice(request.path_params.at("id"));
  if (!device.ok()) return Response::FromStatus(device.status());
  return Response::Json(
      200, MachineToJson(WithPresence(api, *device), api.clock.Now(), api.inactive_after_ms));
}

// POST /api/machines/{id}/{verb} for every catalog entry.
Response RequestAction(ApiContext& api, const ActionTypeSpec& spec, Request& request) {
  Result<ApiToken> token = Authorize(api, request, spec.min_role);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<nlohmann::json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  Result<ParsedActionBody> parsed = spec.parse_body(*body);
  if (!parsed.ok()) return Response::FromStatus(parsed.status());
  Result<MachineAction> action = api.actions.Create({.machine_id = request.path_params.at("id"),
                                                     .spec = &spec,
                                                     .body = *parsed,
                                                     .requestor = token->name,
                                                     .request_source = "PublicApi"});
  if (!action.ok()) return Response::FromStatus(action.status());
  return Response::Json(201, MachineActionToJson(*action));
}

// Offboarding revokes the device certificate at once: the device's stream is closed and
// every later Connect with that certificate is refused. It is recorded as a MachineAction of
// type Offboard that the server completes itself.
Response Offboard(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kAdmin);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<nlohmann::json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  auto comment = body->find("Comment");
  if (comment == body->end() || !comment->is_string() || comment->get<std::string>().empty()) {
    return Response::FromStatus(InvalidArgument("'Comment' is required"));
  }
  for (const auto& [key, value] : body->items()) {
    if (key != "Comment") {
      return Response::FromStatus(InvalidArgument("unknown field '" + key + "'"));
    }
  }
  Result<MachineAction> action = api.actions.Offboard(request.path_params.at("id"), token->name,
                                                      comment->get<std::string>());
  if (!action.ok()) return Response::FromStatus(action.status());
  api.sessions.Disconnect(action->machine_id, "device offboarded");
  return Response::Json(201, MachineActionToJson(*action));
}

}  // namespace

void AddMachineRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/api/machines", [&api](Request& r) { return ListMachines(api, r); });
  router.Add("GET", "/api/machines/{id}", [&api](Request& r) { return GetMachine(api, r); });
  router.Add("POST", "/api/machines/{id}/offboard", [&api](Request& r) { return Offboard(api, r); });
  for (const ActionTypeSpec& spec : ActionCatalog()) {
    router.Add("POST", "/api/machines/{id}/" + spec.route,
               [&api, &spec](Request& r) { return RequestAction(api, spec, r); });
  }
}

}  // namespace quell::server
