// /api/files/{sha256}/deepAnalysis: detonating a sample in quell-sandbox (Defender's "Deep
// analysis"). POST requests one (collecting the sample from a device first when the server
// does not hold it); GET shows the newest one, with its report once it Succeeded.
#include "common/clock.h"
#include "server/analysis/deep_analysis_service.h"
#include "server/api/api_context.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

// Analyses name their sample by SHA-256 only (the sandbox reports it by that name).
Result<std::string> Sha256Param(const Request& request) {
  QUELL_ASSIGN_OR_RETURN(std::string hash, FileHashParam(request, /*allow_md5=*/false));
  if (hash.size() != 64) {
    return InvalidArgument("deep analysis names a file by its SHA-256 (64 hex digits), not '" +
                           hash + "'");
  }
  return hash;
}

nlohmann::json Nullable(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}

nlohmann::json AnalysisToJson(const DeepAnalysis& a, bool with_report) {
  nlohmann::json out = {{"id", a.id},
                        {"sha256", a.sha256},
                        {"status", ActionStatusName(a.status)},
                        {"stage", a.stage},
                        {"requestor", a.requestor},
                        {"comment", a.comment},
                        {"collectActionId", Nullable(a.collect_action_id)},
                        {"requested", FormatIso8601(a.requested)},
                        {"updated", FormatIso8601(a.updated)},
                        {"verdict", Nullable(a.verdict)},
                        {"error", Nullable(a.error)}};
  if (with_report && !a.report_json.empty()) {
    out["report"] = nlohmann::json::parse(a.report_json, nullptr, false);
  }
  return out;
}

Response RequestAnalysis(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  if (api.deep_analysis == nullptr) {
    return Response::Error(503, "Unavailable", "deep analysis is not available on this server");
  }
  Result<std::string> sha = Sha256Param(request);
  if (!sha.ok()) return Response::FromStatus(sha.status());
  Result<nlohmann::json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  DeepAnalysisRequest ask{.sha256 = *sha, .requestor = token->name};
  for (const auto& [key, value] : body->items()) {
    if (key != "Comment" && key != "MachineId") {
      return Response::FromStatus(InvalidArgument("unknown field '" + key + "'"));
    }
    if (!value.is_string()) {
      return Response::FromStatus(InvalidArgument("'" + key + "' must be a string"));
    }
    (key == "Comment" ? ask.comment : ask.machine_id) = value.get<std::string>();
  }
  if (ask.comment.empty()) {
    return Response::FromStatus(InvalidArgument("'Comment' is required and must be a non-empty string"));
  }
  if (!ask.machine_id.empty()) {
    if (Result<Device> device = api.store.GetDevice(ask.machine_id); !device.ok()) {
      return Response::FromStatus(device.status());
    }
  }
  Result<DeepAnalysis> analysis = api.deep_analysis->Request(ask);
  if (!analysis.ok()) {
    if (analysis.status().message() == kAnalysisInProgress) {
      return Response::Error(400, "ActiveRequestAlreadyExists", kAnalysisInProgress);
    }
    return Response::FromStatus(analysis.status());
  }
  return Response::Json(201, AnalysisToJson(*analysis, false));
}

Response GetAnalysis(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<std::string> sha = Sha256Param(request);
  if (!sha.ok()) return Response::FromStatus(sha.status());
  Result<std::vector<DeepAnalysis>> analyses = api.store.ListDeepAnalyses(*sha);
  if (!analyses.ok()) return Response::FromStatus(analyses.status());
  if (analyses->empty()) {
    return Response::FromStatus(NotFound("file " + *sha + " has not been sent to deep analysis"));
  }
  return Response::Json(200, AnalysisToJson(analyses->front(), true));
}

}  // namespace

void AddDeepAnalysisRoutes(http::Router& router, ApiContext& api) {
  router.Add("POST", "/api/files/{hash}/deepAnalysis",
             [&api](Request& r) { return RequestAnalysis(api, r); });
  router.Add("GET", "/api/files/{hash}/deepAnalysis",
             [&api](Request& r) { return GetAnalysis(api, r); });
}

}  // namespace quell::server
