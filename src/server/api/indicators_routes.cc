// /api/indicators in the shape of Defender's ti/indicators API: submit-or-update, list
// (OData $filter on indicatorType, action, indicatorValue; $top, $skip), get, delete, import
// (up to 500 per call, a result per item) and BatchDelete. Every change is audited and
// reaches connected agents through the IndicatorPublisher, asynchronously.
#include "common/ids.h"
#include "server/api/api_context.h"
#include "server/api/odata_query.h"
#include "server/indicators/indicator_model.h"
#include "server/indicators/indicator_publisher.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

constexpr size_t kMaxPageSize = 10'000;
constexpr size_t kMaxPerCall = 500;  // Defender's documented limit for import and BatchDelete

void Publish(ApiContext& api) {
  if (api.indicators != nullptr) api.indicators->Changed();
}

// Fills what the server owns: creator and times; the store numbers a new indicator (its id)
// and keeps id, creator and creation time of an existing (type, value).
Indicator Stamp(Indicator indicator, const ApiToken& token, UnixMillis now) {
  indicator.created_by = token.name;
  indicator.last_updated_by = token.name;
  indicator.creation_time = now;
  indicator.last_update_time = now;
  return indicator;
}

Response Submit(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  UnixMillis now = api.clock.Now();
  Result<Indicator> parsed = ParseIndicatorSubmission(*body, now);
  if (!parsed.ok()) return Response::FromStatus(parsed.status());
  AuditEntry audit{.time = now,
                   .actor = token->name,
                   .operation = "indicator.submitted",
                   .details_json = json{{"indicatorType", IndicatorTypeName(parsed->type)},
                                        {"indicatorValue", parsed->value},
                                        {"action", IndicatorActionName(parsed->action)}}
                                       .dump()};
  Result<std::vector<Indicator>> stored =
      api.store.PutIndicators({Stamp(*parsed, *token, now)}, audit);
  if (!stored.ok()) return Response::FromStatus(stored.status());
  Publish(api);
  return Response::Json(200, IndicatorToJson(stored->front()));
}

Response List(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<ODataQuery> query = ParseODataQuery(
      request.query, {"indicatorType", "action", "indicatorValue"}, kMaxPageSize);
  if (!query.ok()) return Response::FromStatus(query.status());
  IndicatorFilter filter{.skip = query->skip, .top = query->top ? query->top : kMaxPageSize};
  for (const auto& [field, value] : query->equals) {
    if (field == "indicatorType") {
      filter.type = ParseIndicatorType(value);
      if (!filter.type) {
        return Response::FromStatus(
            InvalidArgument("$filter: indicatorType '" + value + "' is unknown"));
      }
    } else if (field == "action") {
      filter.action = ParseIndicatorAction(value);
      if (!filter.action) {
        return Response::FromStatus(InvalidArgument("$filter: action '" + value + "' is unknown"));
      }
    } else {
      filter.value = value;
    }
  }
  // Values are stored normalized: compare in that form when the type says which one.
  if (filter.value && filter.type) {
    if (Result<std::string> normalized = NormalizeIndicatorValue(*filter.type, *filter.value);
        normalized.ok()) {
      filter.value = *normalized;
    }
  }
  Result<std::vector<Indicator>> indicators = api.store.ListIndicators(filter);
  if (!indicators.ok()) return Response::FromStatus(indicators.status());
  json value = json::array();
  for (const Indicator& i : *indicators) value.push_back(IndicatorToJson(i));
  return Response::Json(200, {{"value", value}});
}

Response Get(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<Indicator> indicator = api.store.GetIndicator(request.path_params.at("id"));
  if (!indicator.ok()) return Response::FromStatus(indicator.status());
  return Response::Json(200, IndicatorToJson(*indicator));
}

Result<std::vector<std::string>> DeleteIds(ApiContext& api, const ApiToken& token,
                                           const std::vector<std::string>& ids) {
  AuditEntry audit{.time = api.clock.Now(), .actor = token.name, .operation = "indicator.deleted"};
  QUELL_ASSIGN_OR_RETURN(std::vector<std::string> deleted, api.store.DeleteIndicators(ids, audit));
  if (!deleted.empty()) Publish(api);
  return deleted;
}

Response Delete(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  const std::string& id = request.path_params.at("id");
  Result<std::vector<std::string>> deleted = DeleteIds(api, *token, {id});
  if (!deleted.ok()) return Response::FromStatus(deleted.status());
  if (deleted->empty()) return Response::FromStatus(NotFound("indicator " + id + " not found"));
  return Response{.status = 204, .body = ""};
}

// The value of `name` or of its other capitalization ("Indicators"/"indicators").
const json* Member(const json& body, const std::string& name) {
  for (std::string key : {name, std::string(1, static_cast<char>(std::tolower(name[0]))) +
                                    name.substr(1)}) {
    if (auto it = body.find(key); it != body.end()) return &*it;
  }
  return nullptr;
}

Result<const json*> ListMember(const json& body, const std::string& name) {
  for (const auto& [key, value] : body.items()) {
    if (key != name && key != std::string(1, static_cast<char>(std::tolower(name[0]))) + name.substr(1)) {
      return InvalidArgument("unknown field '" + key + "'");
    }
  }
  const json* list = Member(body, name);
  if (list == nullptr || !list->is_array()) return InvalidArgument(name + " must be a list");
  if (list->empty()) return InvalidArgument(name + " is empty");
  if (list->size() > kMaxPerCall) {
    return InvalidArgument(name + " has " + std::to_string(list->size()) +
                           " entries; at most " + std::to_string(kMaxPerCall) + " per call");
  }
  return list;
}

// POST /api/indicators/import: each item is validated on its own; the valid ones are
// stored in one transaction. The answer lists every item in order, like Defender's.
Response Import(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  Result<const json*> items = ListMember(*body, "Indicators");
  if (!items.ok()) return Response::FromStatus(items.status());

  UnixMillis now = api.clock.Now();
  struct Item {
    std::string value;            // as given, for the answer
    std::optional<size_t> index;  // into `valid`
    std::string failure;
  };
  std::vector<Item> results;
  std::vector<Indicator> valid;
  std::map<std::pair<IndicatorType, std::string>, size_t> first_item;
  for (const json& entry : **items) {
    Item item;
    if (entry.is_object()) {
      const json* value = Member(entry, "IndicatorValue");
      if (value != nullptr && value->is_string()) item.value = value->get<std::string>();
    }
    Result<Indicator> parsed = ParseIndicatorSubmission(entry, now);
    if (!parsed.ok()) {
      item.failure = parsed.status().message();
    } else if (auto [it, fresh] = first_item.emplace(std::make_pair(parsed->type, parsed->value),
                                                     results.size());
               !fresh) {
      item.failure = "the same indicator is item " + std::to_string(it->second + 1) +
                     " of this import";
    } else {
      item.index = valid.size();
      valid.push_back(Stamp(*parsed, *token, now));
    }
    results.push_back(std::move(item));
  }
  std::vector<Indicator> stored;
  if (!valid.empty()) {
    AuditEntry audit{.time = now,
                     .actor = token->name,
                     .operation = "indicator.imported",
                     .details_json = json{{"items", results.size()}, {"valid", valid.size()}}.dump()};
    Result<std::vector<Indicator>> put = api.store.PutIndicators(valid, audit);
    if (!put.ok()) return Response::FromStatus(put.status());
    stored = std::move(put).value();
    Publish(api);
  }
  json value = json::array();
  for (const Item& item : results) {
    bool failed = !item.index.has_value();
    value.push_back({{"id", failed ? json() : json(stored[*item.index].id)},
                     {"indicator", failed ? json(item.value) : json(stored[*item.index].value)},
                     {"isFailed", failed},
                     {"failureReason", failed ? json(item.failure) : json()}});
  }
  return Response::Json(200, {{"value", value}});
}

Response BatchDelete(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  Result<const json*> list = ListMember(*body, "IndicatorIds");
  if (!list.ok()) return Response::FromStatus(list.status());
  std::vector<std::string> ids;
  for (const json& id : **list) {
    if (!id.is_string()) return Response::FromStatus(InvalidArgument("IndicatorIds must be strings"));
    ids.push_back(id.get<std::string>());
  }
  Result<std::vector<std::string>> deleted = DeleteIds(api, *token, ids);
  if (!deleted.ok()) return Response::FromStatus(deleted.status());
  return Response{.status = 204, .body = ""};
}

}  // namespace

void AddIndicatorRoutes(http::Router& router, ApiContext& api) {
  router.Add("POST", "/api/indicators", [&api](Request& r) { return Submit(api, r); });
  router.Add("GET", "/api/indicators", [&api](Request& r) { return List(api, r); });
  router.Add("GET", "/api/indicators/{id}", [&api](Request& r) { return Get(api, r); });
  router.Add("DELETE", "/api/indicators/{id}", [&api](Request& r) { return Delete(api, r); });
  router.Add("POST", "/api/indicators/import", [&api](Request& r) { return Import(api, r); });
  router.Add("POST", "/api/indicators/BatchDelete",
             [&api](Request& r) { return BatchDelete(api, r); });
}

}  // namespace quell::server
