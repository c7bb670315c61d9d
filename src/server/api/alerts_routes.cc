// /api/alerts: list (OData $filter on severity, status, machineId; $top, $skip; $orderby on
// lastActivity, createdDateTime, severity), get, and PATCH (status, assignedTo,
// classification, determination, comment), in the shapes of the MDE alert API.
#include "server/alerts/alert_model.h"
#include "server/alerts/alert_service.h"
#include "server/api/api_context.h"
#include "server/api/odata_query.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

constexpr size_t kMaxPageSize = 10'000;  // Defender's documented maximum
constexpr size_t kMaxCommentLength = 4000;
constexpr size_t kMaxAssignedToLength = 256;

Response NotConfigured() {
  return Response::FromStatus(Unavailable("alerts are not enabled on this server"));
}

Response ListAlerts(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<ODataQuery> query =
      ParseODataQuery(request.query, {"severity", "status", "machineId"}, kMaxPageSize,
                      {"lastActivity", "createdDateTime", "severity"});
  if (!query.ok()) return Response::FromStatus(query.status());
  AlertFilter filter{.skip = query->skip, .top = query->top ? query->top : kMaxPageSize};
  for (const auto& [field, value] : query->equals) {
    if (field == "status") {
      filter.status = ParseAlertStatus(value);
      if (!filter.status) {
        return Response::FromStatus(InvalidArgument(
            "$filter: status must be one of New, InProgress, Resolved; not '" + value + "'"));
      }
    } else if (field == "severity") {
      filter.severity = ParseAlertSeverity(value);
      if (!filter.severity) {
        return Response::FromStatus(
            InvalidArgument("$filter: severity must be one of UnSpecified, Informational, Low, "
                            "Medium, High; not '" + value + "'"));
      }
    } else {
      filter.machine_id = value;
    }
  }
  if (query->order_by) {
    const std::string& field = query->order_by->field;
    filter.order_by = field == "createdDateTime" ? AlertOrder::kCreated
                      : field == "severity"      ? AlertOrder::kSeverity
                                                 : AlertOrder::kLastActivity;
    filter.descending = query->order_by->descending;
  }
  Result<std::vector<Alert>> alerts = api.store.ListAlerts(filter);
  if (!alerts.ok()) return Response::FromStatus(alerts.status());
  nlohmann::json value = nlohmann::json::array();
  for (const Alert& a : *alerts) value.push_back(AlertToJson(a));
  return Response::Json(200, {{"value", value}});
}

Response GetAlert(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<Alert> alert = api.store.GetAlert(request.path_params.at("id"));
  if (!alert.ok()) return Response::FromStatus(alert.status());
  return Response::Json(200, AlertToJson(*alert));
}

// The PATCH body as AlertChanges; InvalidArgument names the offending field.
Result<AlertChanges> ParseChanges(const nlohmann::json& body) {
  AlertChanges changes;
  if (body.empty()) return InvalidArgument("nothing to update");
  for (const auto& [key, value] : body.items()) {
    if (key != "status" && key != "assignedTo" && key != "classification" &&
        key != "determination" && key != "comment") {
      return InvalidArgument("unknown field '" + key + "' (updatable: status, assignedTo, "
                             "classification, determination, comment)");
    }
    // classification, determination and assignedTo may be null to clear them.
    if (value.is_null() && key != "status" && key != "comment") continue;
    if (!value.is_string()) return InvalidArgument("'" + key + "' must be a string");
  }
  auto text = [&body](const char* key) -> std::optional<std::string> {
    auto it = body.find(key);
    if (it == body.end()) return std::nullopt;
    return it->is_null() ? std::string() : it->get<std::string>();
  };
  if (auto status = text("status")) {
    changes.status = ParseAlertStatus(*status);
    if (!changes.status) {
      return InvalidArgument("'status' must be New, InProgress or Resolved, not '" + *status +
                             "'");
    }
  }
  if ((changes.assigned_to = text("assignedTo")) &&
      changes.assigned_to->size() > kMaxAssignedToLength) {
    return InvalidArgument("'assignedTo' is longer than " + std::to_string(kMaxAssignedToLength));
  }
  if (auto c = text("classification")) {
    if (!c->empty() && !ParseAlertClassification(*c)) {
      return InvalidArgument("'classification' must be TruePositive, "
                             "InformationalExpectedActivity or FalsePositive, not '" + *c + "'");
    }
    changes.classification = *c;
  }
  if (auto d = text("determination")) {
    if (!d->empty() && !ParseAlertDetermination(*d)) {
      return InvalidArgument(
          "'determination' must be one of MultiStagedAttack, MaliciousUserActivity, "
          "CompromisedUser, Malware, Phishing, UnwantedSoftware, SecurityTesting, "
          "LineOfBusinessApplication, ConfirmedUserActivity, Clean, InsufficientData, Other; "
          "not '" + *d + "'");
    }
    changes.determination = *d;
  }
  if ((changes.comment = text("comment")) && changes.comment->size() > kMaxCommentLength) {
    return InvalidArgument("'comment' is longer than " + std::to_string(kMaxCommentLength) +
                           " characters");
  }
  return changes;
}

Response PatchAlert(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  if (api.alerts == nullptr) return NotConfigured();
  Result<nlohmann::json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  Result<AlertChanges> changes = ParseChanges(*body);
  if (!changes.ok()) return Response::FromStatus(changes.status());
  Result<Alert> alert = api.alerts->Update(request.path_params.at("id"), *changes, token->name);
  if (!alert.ok()) return Response::FromStatus(alert.status());
  return Response::Json(200, AlertToJson(*alert));
}

}  // namespace

void AddAlertRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/api/alerts", [&api](Request& r) { return ListAlerts(api, r); });
  router.Add("GET", "/api/alerts/{id}", [&api](Request& r) { return GetAlert(api, r); });
  router.Add("PATCH", "/api/alerts/{id}", [&api](Request& r) { return PatchAlert(api, r); });
}

}  // namespace quell::server
