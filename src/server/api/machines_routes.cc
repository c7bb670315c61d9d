// /api/machines: the device inventory, and one POST route per action type in the catalog
// (POST /api/machines/{id}/isolate, .../unisolate, ...), plus offboarding and PATCH of the
// device group.
#include "common/logging.h"
#include "server/actions/file_collection.h"
#include "server/api/api_context.h"
#include "server/api/resource_json.h"
#include "server/indicators/indicator_publisher.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

// The Machine resource, with the indicator version the device last acknowledged (null if
// it never did).
Response MachineResponse(ApiContext& api, const std::string& id) {
  Result<Device> device = api.store.GetDevice(id);
  if (!device.ok()) return Response::FromStatus(device.status());
  Result<std::optional<IndicatorAckRecord>> ack = api.store.GetIndicatorAck(id);
  if (!ack.ok()) return Response::FromStatus(ack.status());
  nlohmann::json machine =
      MachineToJson(WithPresence(api, *device), api.clock.Now(), api.inactive_after_ms);
  machine["indicatorVersion"] = *ack ? nlohmann::json((*ack)->version) : nlohmann::json();
  return Response::Json(200, machine);
}

Response ListMachines(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<std::vector<Device>> devices = api.store.ListDevices();
  if (!devices.ok()) return Response::FromStatus(devices.status());
  Result<std::map<std::string, IndicatorAckRecord>> acks = api.store.ListIndicatorAcks();
  if (!acks.ok()) return Response::FromStatus(acks.status());
  nlohmann::json value = nlohmann::json::array();
  UnixMillis now = api.clock.Now();
  for (const Device& d : *devices) {
    nlohmann::json machine = MachineToJson(WithPresence(api, d), now, api.inactive_after_ms);
    auto ack = acks->find(d.id);
    machine["indicatorVersion"] = ack == acks->end() ? nlohmann::json() : nlohmann::json(ack->second.version);
    value.push_back(std::move(machine));
  }
  return Response::Json(200, {{"value", value}});
}

Response GetMachine(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  return MachineResponse(api, request.path_params.at("id"));
}

// PATCH /api/machines/{id} (a Quell extension): {"rbacGroupName": "..."} moves the device
// into a device group, which decides the indicators that apply to it.
Response PatchMachine(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kAdmin);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<nlohmann::json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  for (const auto& [key, value] : body->items()) {
    if (key != "rbacGroupName") {
      return Response::FromStatus(
          InvalidArgument("unknown field '" + key + "' (updatable: rbacGroupName)"));
    }
  }
  auto group = body->find("rbacGroupName");
  if (group == body->end() || !group->is_string() || group->get<std::string>().size() > 256) {
    return Response::FromStatus(
        InvalidArgument("rbacGroupName is required: a string of at most 256 characters"));
  }
  const std::string& id = request.path_params.at("id");
  Result<Device> before = api.store.GetDevice(id);
  if (!before.ok()) return Response::FromStatus(before.status());
  std::string name = group->get<std::string>();
  if (Status set = api.store.SetDeviceGroup(id, name); !set.ok()) return Response::FromStatus(set);
  if (Status audited = api.store.AppendAudit(
          {.time = api.clock.Now(),
           .actor = token->name,
           .operation = "device.group_changed",
           .target = id,
           .details_json =
               nlohmann::json{{"from", before->rbac_group_name}, {"to", name}}.dump()});
      !audited.ok()) {
    Logger("server.api")->error("device={} group change not audited: {}", id, audited.ToString());
  }
  if (api.indicators != nullptr) api.indicators->Changed();
  return MachineResponse(api, id);
}

// The library files a body names, resolved to what they are now: the device fetches exactly
// these bytes, even if the library entry is replaced while the action waits.
Status ResolveLibraryFiles(ApiContext& api, ParsedActionBody& body) {
  if (body.library_files.empty()) return Status::Ok();
  nlohmann::json library = nlohmann::json::object();
  for (const std::string& name : body.library_files) {
    Result<LibraryFile> file = api.store.GetLibraryFile(name);
    if (!file.ok()) {
      return InvalidArgument("library file '" + name +
                             "' does not exist; upload it with POST /api/libraryfiles");
    }
    library[name] = {{"sha256", file->sha256}, {"size", file->size}};
  }
  body.agent_parameters["Library"] = std::move(library);
  return Status::Ok();
}

// A file named by hash only: the device is sent the newest path it was seen with it.
Status ResolvePathFromSightings(ApiContext& api, const std::string& machine_id,
                                ParsedActionBody& body) {
  if (body.path_from_sightings_of.empty()) return Status::Ok();
  Result<std::string> path = NewestSightedPath(api.store, machine_id, body.path_from_sightings_of);
  if (path.status().code() == StatusCode::kNotFound) {
    return InvalidArgument("file " + body.path_from_sightings_of +
                           " has not been seen on this device; give its 'Path'");
  }
  if (!path.ok()) return path.status();
  body.agent_parameters["Path"] = *path;
  return Status::Ok();
}

// Defender allows 25 live response sessions at once across the fleet; more get 429.
Status CheckLiveResponseCapacity(ApiContext& api) {
  size_t open = 0;
  for (ActionStatus s : {ActionStatus::kPending, ActionStatus::kInProgress}) {
    QUELL_ASSIGN_OR_RETURN(std::vector<MachineAction> actions,
                           api.store.ListActions({.status = s, .type = "LiveResponse"}));
    open += actions.size();
  }
  if (open >= api.max_live_response_sessions) {
    return ResourceExhausted("Too many requests: " + std::to_string(open) +
                             " live response sessions are open (at most " +
                             std::to_string(api.max_live_response_sessions) + ")");
  }
  return Status::Ok();
}

// POST /api/machines/{id}/{verb} for every catalog entry.
Response RequestAction(ApiContext& api, const ActionTypeSpec& spec, Request& request) {
  Result<ApiToken> token = Authorize(api, request, spec.min_role);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<nlohmann::json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  Result<ParsedActionBody> parsed = spec.parse_body(*body);
  if (!parsed.ok()) return Response::FromStatus(parsed.status());
  if (token->role < parsed->min_role) {
    return Response::FromStatus(PermissionDenied(
        "this " + spec.type + " needs the " + std::string(RoleName(parsed->min_role)) +
        " role (PutFile and RunScript run code on the device)"));
  }
  if (Status resolved = ResolveLibraryFiles(api, *parsed); !resolved.ok()) {
    return Response::FromStatus(resolved);
  }
  if (Status resolved = ResolvePathFromSightings(api, request.path_params.at("id"), *parsed);
      !resolved.ok()) {
    return Response::FromStatus(resolved);
  }
  if (spec.type == "LiveResponse") {
    if (Status capacity = CheckLiveResponseCapacity(api); !capacity.ok()) {
      return Response::Error(429, "TooManyRequests", capacity.message());
    }
  }
  Result<MachineAction> action = api.actions.Create({.machine_id = request.path_params.at("id"),
                                                     .spec = &spec,
                                                     .body = *parsed,
                                                     .requestor = token->name,
                                                     .request_source = "PublicApi"});
  if (!action.ok()) {
    if (action.status().code() == StatusCode::kFailedPrecondition &&
        action.status().message() == kActionInProgress) {
      return Response::Error(400, spec.conflict_error_code, action.status().message());
    }
    return Response::FromStatus(action.status());
  }
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
  router.Add("PATCH", "/api/machines/{id}", [&api](Request& r) { return PatchMachine(api, r); });
  router.Add("POST", "/api/machines/{id}/offboard", [&api](Request& r) { return Offboard(api, r); });
  for (const ActionTypeSpec& spec : ActionCatalog()) {
    router.Add("POST", "/api/machines/{id}/" + spec.route,
               [&api, &spec](Request& r) { return RequestAction(api, spec, r); });
  }
}

}  // namespace quell::server
