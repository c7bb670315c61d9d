// The HTTP side of live response sessions: the WebSocket route, and the commands of a
// session read back from the audit log.
#include <charconv>

#include "server/api/action_links.h"
#include "server/blobs/blob_store.h"
#include "server/live/live_broker.h"
#include "server/live/live_line.h"

namespace quell::server::live {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

// The session's action, or the 404 to answer with.
Result<MachineAction> SessionAction(ApiContext& api, const std::string& id) {
  Result<MachineAction> action = api.store.GetAction(id);
  if (!action.ok()) return action.status();
  if (action->type != "LiveResponse") {
    return NotFound("action " + id + " is " + action->type + ", not a live response session");
  }
  return action;
}

Response ListCommands(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kResponder); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  const std::string& id = request.path_params.at("id");
  if (Result<MachineAction> action = SessionAction(api, id); !action.ok()) {
    return Response::FromStatus(action.status());
  }
  Result<json> commands = ListSessionCommands(api, id);
  if (!commands.ok()) return Response::FromStatus(commands.status());
  return Response::Json(200, {{"value", *commands}});
}

// The name a fetched file is saved as: the base name of getfile's path, link-safe.
std::string DownloadName(const std::string& line, const std::string& artifact) {
  std::string base;
  if (Result<ParsedLine> parsed = ParseLine(line); parsed.ok() && parsed->argv.size() > 1) {
    const std::string& path = parsed->argv[1];
    base = path.substr(path.rfind('/') + 1);
  }
  std::string safe;
  for (char c : base.substr(0, 100)) {
    safe += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ? c : '_';
  }
  if (safe.empty() || safe.front() == '.') safe = artifact;
  return safe;
}

Response DownloadCommandResult(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  if (api.blobs == nullptr || api.download_links == nullptr) {
    return Response::Error(503, "Unavailable", "downloads are not configured on this server");
  }
  const std::string& id = request.path_params.at("id");
  const std::string& command_text = request.path_params.at("commandId");
  uint32_t command_id = 0;
  auto [end, err] = std::from_chars(command_text.data(), command_text.data() + command_text.size(),
                                    command_id);
  if (err != std::errc() || end != command_text.data() + command_text.size()) {
    return Response::Error(400, "InvalidArgument",
                           "commandId must be a command number, not '" + command_text + "'");
  }
  Result<MachineAction> action = SessionAction(api, id);
  if (!action.ok()) return Response::FromStatus(action.status());
  Result<json> commands = ListSessionCommands(api, id);
  if (!commands.ok()) return Response::FromStatus(commands.status());
  for (const json& command : *commands) {
    if (command.value("commandId", 0u) != command_id) continue;
    const json artifact = command.value("artifact", json());
    if (!artifact.is_object() || !artifact.contains("name") || !artifact["name"].is_string()) {
      return Response::Error(404, "NotFound",
                             "command " + command_text + " has no file to download (" +
                                 command.value("status", std::string()) + ")");
    }
    Result<ActionArtifact> stored = api.store.GetActionArtifact(id, artifact["name"]);
    if (!stored.ok() || !api.blobs->PathOf(stored->sha256).ok()) {
      return Response::Error(404, "NotFound",
                             "the file of command " + command_text + " is not stored");
    }
    return IssueLink(api, request, *token, *action, *stored,
                     DownloadName(command.value("line", std::string()), stored->name));
  }
  return Response::Error(404, "NotFound",
                         "session " + id + " has no finished command " + command_text);
}

}  // namespace

Result<json> ListSessionCommands(ApiContext& api, const std::string& session_id) {
  constexpr size_t kPage = 1000;
  json value = json::array();
  for (size_t skip = 0;; skip += kPage) {
    QUELL_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries,
                           api.store.ListAudit({.target = session_id, .skip = skip, .top = kPage}));
    for (const AuditEntry& entry : entries) {
      if (entry.operation != "live.command") continue;
      const json details = json::parse(entry.details_json, nullptr, false);
      if (!details.is_object()) continue;
      json command = {{"commandId", details.value("commandId", 0u)},
                      {"line", details.value("line", std::string())},
                      {"requestedBy", entry.actor},
                      {"startTime", details.value("startTime", std::string())},
                      {"endTime", details.value("endTime", std::string())},
                      {"durationMs", details.value("durationMs", int64_t{0})},
                      {"status", details.value("status", std::string())},
                      {"error", details.value("error", std::string())},
                      {"background", details.value("background", false)},
                      {"outputBytes", details.value("outputBytes", uint64_t{0})},
                      {"artifact", details.value("artifact", json())}};
      if (details.contains("output")) {
        command["output"] = details["output"];
      } else {
        command["outputSha256"] = details.value("outputSha256", std::string());
      }
      if (details.contains("actionId")) command["actionId"] = details["actionId"];
      value.push_back(std::move(command));
    }
    if (entries.size() < kPage) break;
  }
  return value;
}

void AddLiveResponseRoutes(http::Router& router, ApiContext& api, LiveSessionBroker& broker) {
  router.AddWebSocket("/api/machines/{id}/liveresponse",
                      [&broker](Request& r) { return broker.Open(r); },
                      http::WebSocketOptions{.max_message_bytes = 64 << 10});
  router.Add("GET", "/api/liveresponse/sessions/{id}/commands",
             [&api](Request& r) { return ListCommands(api, r); });
  router.Add("GET", "/api/liveresponse/sessions/{id}/commands/{commandId}/download",
             [&api](Request& r) { return DownloadCommandResult(api, r); });
}

}  // namespace quell::server::live
