// /api/files/{hash}: where a file has been seen (from the agents' file sightings), and the
// fleet-wide stop-and-quarantine that issues one StopAndQuarantineFile per device that has it.
// {hash} is a SHA-256 or SHA-1 (hex); MD5 lookups are allowed for sightings only.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "common/clock.h"
#include "server/api/api_context.h"
#include "server/api/resource_json.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

// Defender stops a fleet-wide quarantine at 1,000 devices; so do we (a Block indicator with
// BlockAndRemediate is the tool for more).
constexpr size_t kMaxDevices = 1000;
constexpr size_t kMaxSightings = 100'000;

// The hash from the path, lowercased; InvalidArgument unless it is 32, 40 or 64 hex digits.
Result<std::string> HashParam(const Request& request, bool allow_md5) {
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

Response ListSightings(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<std::string> hash = HashParam(request, /*allow_md5=*/true);
  if (!hash.ok()) return Response::FromStatus(hash.status());
  Result<std::vector<FileSighting>> sightings = api.store.ListFileSightings(*hash, kMaxSightings);
  if (!sightings.ok()) return Response::FromStatus(sightings.status());
  nlohmann::json value = nlohmann::json::array();
  std::map<std::string, std::string> names;  // device id -> computerDnsName
  for (const FileSighting& f : *sightings) {
    auto [it, fresh] = names.try_emplace(f.device_id);
    if (fresh) {
      Result<Device> d = api.store.GetDevice(f.device_id);
      if (d.ok()) it->second = d->computer_dns_name;
    }
    value.push_back({{"machineId", f.device_id},
                     {"computerDnsName", it->second},
                     {"filePath", f.path},
                     {"sha256", f.sha256},
                     {"sha1", f.sha1.empty() ? nlohmann::json() : nlohmann::json(f.sha1)},
                     {"md5", f.md5.empty() ? nlohmann::json() : nlohmann::json(f.md5)},
                     {"source", f.source},
                     {"firstSeen", FormatIso8601(f.first_seen)},
                     {"lastSeen", FormatIso8601(f.last_seen)}});
  }
  return Response::Json(200, {{"value", value}});
}

// POST /api/files/{hash}/stopAndQuarantine {"Comment": "..."} (a Quell extension): one
// StopAndQuarantineFile action per device where the file was seen, each with the path seen
// there most recently as a hint. 201 with the actions; devices that could not get one (e.g.
// offboarded) are listed under "skipped" with the reason.
Response StopAndQuarantineEverywhere(ApiContext& api, Request& request) {
  const ActionTypeSpec* spec = FindActionType("StopAndQuarantineFile");
  Result<ApiToken> token = Authorize(api, request, spec->min_role);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<std::string> hash = HashParam(request, /*allow_md5=*/false);
  if (!hash.ok()) return Response::FromStatus(hash.status());
  Result<nlohmann::json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());

  Result<std::vector<FileSighting>> sightings = api.store.ListFileSightings(*hash, kMaxSightings);
  if (!sightings.ok()) return Response::FromStatus(sightings.status());
  // Newest first, so the first sighting per device is its freshest path.
  std::vector<const FileSighting*> per_device;
  std::set<std::string> seen;
  for (const FileSighting& f : *sightings) {
    if (seen.insert(f.device_id).second) per_device.push_back(&f);
  }
  if (per_device.empty()) {
    return Response::FromStatus(NotFound("file " + *hash + " has not been seen on any device"));
  }
  if (per_device.size() > kMaxDevices) {
    return Response::FromStatus(InvalidArgument(
        "file " + *hash + " was seen on " + std::to_string(per_device.size()) +
        " devices; at most " + std::to_string(kMaxDevices) +
        " at once (use a BlockAndRemediate indicator for more)"));
  }

  nlohmann::json created = nlohmann::json::array();
  nlohmann::json skipped = nlohmann::json::array();
  for (const FileSighting* f : per_device) {
    nlohmann::json action_body = *body;
    action_body[hash->size() == 64 ? "Sha256" : "Sha1"] = *hash;
    action_body["Path"] = f->path;
    Result<ParsedActionBody> parsed = spec->parse_body(action_body);
    if (!parsed.ok()) return Response::FromStatus(parsed.status());  // the shared body is bad
    Result<MachineAction> action = api.actions.Create({.machine_id = f->device_id,
                                                       .spec = spec,
                                                       .body = *parsed,
                                                       .requestor = token->name,
                                                       .request_source = "PublicApi"});
    if (action.ok()) {
      created.push_back(MachineActionToJson(*action));
    } else {
      skipped.push_back({{"machineId", f->device_id}, {"reason", action.status().message()}});
    }
  }
  return Response::Json(201, {{"value", created}, {"skipped", skipped}});
}

}  // namespace

void AddFileRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/api/files/{hash}/sightings",
             [&api](Request& r) { return ListSightings(api, r); });
  router.Add("POST", "/api/files/{hash}/stopAndQuarantine",
             [&api](Request& r) { return StopAndQuarantineEverywhere(api, r); });
}

}  // namespace quell::server
