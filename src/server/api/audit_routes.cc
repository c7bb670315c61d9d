// /api/audit: the append-only audit log (admin only) — who did what, when, and why.
#include "server/api/api_context.h"
#include "server/api/odata_query.h"
#include "server/api/resource_json.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

Response ListAudit(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kAdmin); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  std::map<std::string, std::string> paging;  // $top/$skip; `target` is a plain parameter
  AuditFilter filter;
  for (const auto& [key, value] : request.query) {
    if (key == "target") {
      filter.target = value;
    } else {
      paging[key] = value;
    }
  }
  Result<ODataQuery> query = ParseODataQuery(paging, {}, 10'000);
  if (!query.ok()) return Response::FromStatus(query.status());
  filter.skip = query->skip;
  if (query->top) filter.top = query->top;
  Result<std::vector<AuditEntry>> entries = api.store.ListAudit(filter);
  if (!entries.ok()) return Response::FromStatus(entries.status());
  nlohmann::json value = nlohmann::json::array();
  for (const AuditEntry& e : *entries) value.push_back(AuditEntryToJson(e));
  return Response::Json(200, {{"value", value}});
}

}  // namespace

void AddAuditRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/api/audit", [&api](Request& r) { return ListAudit(api, r); });
}

}  // namespace quell::server
