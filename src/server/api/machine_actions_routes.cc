// /api/machineactions: list (OData $filter on status, machineId, type; $top, $skip), get,
// cancel, undo; and /api/actiontypes, the catalog as data.
#include "server/api/api_context.h"
#include "server/api/odata_query.h"
#include "server/api/resource_json.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

constexpr size_t kMaxPageSize = 10'000;  // Defender's documented maximum

Response ListActions(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<ODataQuery> query =
      ParseODataQuery(request.query, {"status", "machineId", "type"}, kMaxPageSize);
  if (!query.ok()) return Response::FromStatus(query.status());
  ActionFilter filter{.skip = query->skip, .top = query->top ? query->top : kMaxPageSize};
  for (const auto& [field, value] : query->equals) {
    if (field == "status") {
      filter.status = ParseActionStatus(value);
      if (!filter.status) {
        return Response::FromStatus(InvalidArgument(
            "$filter: status must be one of Pending, InProgress, Succeeded, Failed, TimeOut, "
            "Cancelled; not '" + value + "'"));
      }
    } else if (field == "machineId") {
      filter.machine_id = value;
    } else {
      filter.type = value;
    }
  }
  Result<std::vector<MachineAction>> actions = api.store.ListActions(filter);
  if (!actions.ok()) return Response::FromStatus(actions.status());
  nlohmann::json value = nlohmann::json::array();
  for (const MachineAction& a : *actions) value.push_back(MachineActionToJson(a));
  return Response::Json(200, {{"value", value}});
}

Response GetAction(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<MachineAction> action = api.store.GetAction(request.path_params.at("id"));
  if (!action.ok()) return Response::FromStatus(action.status());
  return Response::Json(200, MachineActionToJson(*action));
}

Response CancelAction(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  std::string comment;
  if (!request.body.empty()) {
    Result<nlohmann::json> body = JsonObjectBody(request);
    if (!body.ok()) return Response::FromStatus(body.status());
    for (const auto& [key, value] : body->items()) {
      if (key != "Comment") {
        return Response::FromStatus(InvalidArgument("unknown field '" + key + "'"));
      }
      if (!value.is_string()) {
        return Response::FromStatus(InvalidArgument("'Comment' must be a string"));
      }
      comment = value.get<std::string>();
    }
  }
  Result<MachineAction> action =
      api.actions.Cancel(request.path_params.at("id"), token->name, comment);
  if (!action.ok()) return Response::FromStatus(action.status());
  return Response::Json(200, MachineActionToJson(*action));
}

// POST /api/machineactions/{id}/undo (a Quell extension): {"Comment": "..."} required.
Response UndoAction(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<nlohmann::json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  for (const auto& [key, value] : body->items()) {
    if (key != "Comment") {
      return Response::FromStatus(InvalidArgument("unknown field '" + key + "'"));
    }
  }
  auto comment = body->find("Comment");
  if (comment == body->end() || !comment->is_string() || comment->get<std::string>().empty()) {
    return Response::FromStatus(
        InvalidArgument("'Comment' is required and must be a non-empty string"));
  }
  Result<MachineAction> undo = api.actions.Undo(request.path_params.at("id"), token->name,
                                                comment->get<std::string>(), "PublicApi");
  if (!undo.ok()) return Response::FromStatus(undo.status());
  return Response::Json(201, MachineActionToJson(*undo));
}

Response ListActionTypes(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  nlohmann::json value = nlohmann::json::array();
  for (const ActionTypeSpec& spec : ActionCatalog()) value.push_back(DescribeActionType(spec));
  return Response::Json(200, {{"value", value}});
}

}  // namespace

void AddMachineActionRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/api/machineactions", [&api](Request& r) { return ListActions(api, r); });
  router.Add("GET", "/api/machineactions/{id}", [&api](Request& r) { return GetAction(api, r); });
  router.Add("POST", "/api/machineactions/{id}/cancel",
             [&api](Request& r) { return CancelAction(api, r); });
  router.Add("POST", "/api/machineactions/{id}/undo",
             [&api](Request& r) { return UndoAction(api, r); });
  router.Add("GET", "/api/actiontypes", [&api](Request& r) { return ListActionTypes(api, r); });
}

}  // namespace quell::server
