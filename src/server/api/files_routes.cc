// /api/files/{hash}: a file as the server knows it (collected by CollectFile, and where it was
// seen), its download as a password-protected zip, where it has been seen (the agents' file
// sightings), and the fleet-wide stop-and-quarantine that issues one StopAndQuarantineFile per
// device that has it. {hash} is a SHA-256 or SHA-1 (hex); MD5 lookups are allowed for
// sightings only.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include "common/clock.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/logging.h"
#include "common/zip_writer.h"
#include "server/blobs/blob_store.h"
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


// The computerDnsName of each device id asked for, looked up once.
class DeviceNames {
 public:
  explicit DeviceNames(Store& store) : store_(store) {}
  const std::string& Of(const std::string& device_id) {
    auto [it, fresh] = names_.try_emplace(device_id);
    if (fresh) {
      Result<Device> d = store_.GetDevice(device_id);
      if (d.ok()) it->second = d->computer_dns_name;
    }
    return it->second;
  }

 private:
  Store& store_;
  std::map<std::string, std::string> names_;
};

Response ListSightings(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<std::string> hash = FileHashParam(request, /*allow_md5=*/true);
  if (!hash.ok()) return Response::FromStatus(hash.status());
  Result<std::vector<FileSighting>> sightings = api.store.ListFileSightings(*hash, kMaxSightings);
  if (!sightings.ok()) return Response::FromStatus(sightings.status());
  nlohmann::json value = nlohmann::json::array();
  DeviceNames names(api.store);
  for (const FileSighting& f : *sightings) {
    value.push_back({{"machineId", f.device_id},
                     {"computerDnsName", names.Of(f.device_id)},
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

constexpr size_t kMaxSeenOnListed = 100;

// GET /api/files/{sha256}: what the server knows of a file. 404 when it was neither collected
// nor seen on any device.
Response GetFile(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<std::string> hash = FileHashParam(request, /*allow_md5=*/false);
  if (!hash.ok()) return Response::FromStatus(hash.status());
  if (hash->size() != 64) {
    return Response::FromStatus(InvalidArgument("files are described by their SHA-256"));
  }
  Result<SampleFile> sample = api.store.GetSampleFile(*hash);
  if (!sample.ok() && sample.status().code() != StatusCode::kNotFound) {
    return Response::FromStatus(sample.status());
  }
  Result<std::vector<FileSighting>> sightings = api.store.ListFileSightings(*hash, kMaxSightings);
  if (!sightings.ok()) return Response::FromStatus(sightings.status());
  if (!sample.ok() && sightings->empty()) {
    return Response::FromStatus(
        NotFound("file " + *hash + " was neither collected nor seen on any device"));
  }
  DeviceNames names(api.store);
  nlohmann::json seen_on = nlohmann::json::array();
  std::set<std::string> devices;
  for (const FileSighting& f : *sightings) {
    devices.insert(f.device_id);
    if (seen_on.size() < kMaxSeenOnListed) {
      seen_on.push_back({{"machineId", f.device_id},
                         {"computerDnsName", names.Of(f.device_id)},
                         {"filePath", f.path},
                         {"lastSeen", FormatIso8601(f.last_seen)}});
    }
  }
  nlohmann::json file = {{"sha256", *hash},
                         {"collected", sample.ok()},
                         {"seenOnDevices", devices.size()},
                         {"seenOn", seen_on}};
  if (!sightings->empty()) {
    file["sha1"] = sightings->front().sha1.empty() ? nlohmann::json() : nlohmann::json(sightings->front().sha1);
    file["md5"] = sightings->front().md5.empty() ? nlohmann::json() : nlohmann::json(sightings->front().md5);
  }
  if (sample.ok()) {
    Result<std::vector<FileCollection>> collections = api.store.ListFileCollections(*hash);
    if (!collections.ok()) return Response::FromStatus(collections.status());
    nlohmann::json from = nlohmann::json::array();
    for (const FileCollection& c : *collections) {
      from.push_back({{"machineId", c.machine_id},
                      {"computerDnsName", names.Of(c.machine_id)},
                      {"path", c.path},
                      {"actionId", c.action_id},
                      {"requestor", c.requestor},
                      {"collectedAt", FormatIso8601(c.collected)}});
    }
    file["sha1"] = sample->sha1;
    file["md5"] = sample->md5;
    file["size"] = sample->size;
    file["fileName"] = sample->file_name;
    file["firstCollected"] = FormatIso8601(sample->first_collected);
    file["lastCollected"] = FormatIso8601(sample->last_collected);
    file["collections"] = std::move(from);
  }
  Result<std::vector<DeepAnalysis>> analyses = api.store.ListDeepAnalyses(*hash);
  if (!analyses.ok()) return Response::FromStatus(analyses.status());
  if (!analyses->empty()) {
    const DeepAnalysis& a = analyses->front();
    file["deepAnalysis"] = {{"id", a.id},
                            {"status", ActionStatusName(a.status)},
                            {"verdict", a.verdict.empty() ? nlohmann::json() : nlohmann::json(a.verdict)},
                            {"requested", FormatIso8601(a.requested)}};
  }
  return Response::Json(200, file);
}

constexpr size_t kMinPasswordChars = 8;
constexpr size_t kMaxPasswordChars = 128;

// The name the file gets inside the zip: its collected name when that is a plain file name,
// else its SHA-256 (a name from a device is not trusted to be a safe path).
std::string EntryName(const SampleFile& file) {
  const std::string& name = file.file_name;
  bool plain = !name.empty() && name.size() <= 200 && name != "." && name != ".." &&
               std::all_of(name.begin(), name.end(), [](unsigned char c) {
                 return std::isalnum(c) != 0 || c == '.' || c == '_' || c == '-' || c == '+';
               });
  return plain ? name : file.sha256;
}

// POST /api/files/{sha256}/download {"Password": "...", "Comment": "..."}: the collected file
// in a zip encrypted (WinZip AES-256) with the analyst's password. There is no default
// password: an evidence file must never leave in a form anyone can open.
Response DownloadFile(ApiContext& api, Request& request) {
  Result<ApiToken> token = Authorize(api, request, Role::kResponder);
  if (!token.ok()) return Response::FromStatus(token.status());
  if (api.blobs == nullptr) return Response::Error(503, "Unavailable", "no file store");
  Result<std::string> hash = FileHashParam(request, /*allow_md5=*/false);
  if (!hash.ok()) return Response::FromStatus(hash.status());
  Result<nlohmann::json> body = JsonObjectBody(request);
  if (!body.ok()) return Response::FromStatus(body.status());
  std::string comment;
  std::string password;
  for (const auto& [key, value] : body->items()) {
    if (key != "Password" && key != "Comment") {
      return Response::FromStatus(InvalidArgument("unknown field '" + key + "'"));
    }
    if (!value.is_string()) {
      return Response::FromStatus(InvalidArgument("'" + key + "' must be a string"));
    }
    (key == "Password" ? password : comment) = value.get<std::string>();
  }
  if (password.empty()) {
    return Response::FromStatus(InvalidArgument(
        "'Password' is required: the zip is encrypted with a password you choose"));
  }
  if (password.size() < kMinPasswordChars || password.size() > kMaxPasswordChars) {
    return Response::FromStatus(InvalidArgument(
        "'Password' must be " + std::to_string(kMinPasswordChars) + " to " +
        std::to_string(kMaxPasswordChars) + " characters"));
  }
  if (std::any_of(password.begin(), password.end(),
                  [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    return Response::FromStatus(InvalidArgument("'Password' may not hold control characters"));
  }
  Result<SampleFile> sample = api.store.GetSampleFile(*hash);
  if (!sample.ok()) {
    if (sample.status().code() == StatusCode::kNotFound) {
      return Response::FromStatus(NotFound(
          "file " + *hash + " has not been collected; collect it first with "
          "POST /api/machines/{id}/collectFile"));
    }
    return Response::FromStatus(sample.status());
  }
  Result<std::string> blob = api.blobs->PathOf(sample->sha256);
  if (!blob.ok()) {
    return Response::Error(404, "NotFound", "the collected file is no longer stored");
  }

  // Built beside the blobs (same disk, sized for evidence), unlinked once the response has
  // it open.
  const std::string dir = api.blobs->dir() + "/zips";
  if (Status made = MakeDirs(dir); !made.ok()) return Response::FromStatus(made);
  const std::string zip_path = dir + "/" + NewUuid() + ".zip";
  Result<ZipWriter> zip = ZipWriter::Create(zip_path, {.password = password});
  if (!zip.ok()) return Response::FromStatus(zip.status());
  Status built = zip->AddFile(EntryName(*sample), *blob);
  if (built.ok()) built = zip->Close();
  if (!built.ok()) {
    std::error_code ignored;
    std::filesystem::remove(zip_path, ignored);
    return Response::FromStatus(built.WithContext("build the zip"));
  }
  if (Status audited = api.store.AppendAudit(
          {.time = api.clock.Now(),
           .actor = token->name,
           .operation = "file.downloaded",
           .target = sample->sha256,
           .comment = comment,
           .details_json = nlohmann::json{{"fileName", sample->file_name},
                                          {"size", sample->size},
                                          {"remoteAddress", request.remote_address}}
                               .dump()});
      !audited.ok()) {
    std::error_code ignored;
    std::filesystem::remove(zip_path, ignored);
    Logger("server.api")->error("download of {} not audited: {}", sample->sha256,
                                audited.ToString());
    return Response::Error(503, "Unavailable", "the download cannot be recorded; try again");
  }
  Response response = Response::File(zip_path, "application/zip", sample->sha256 + ".zip");
  response.remove_file_when_open = true;
  return response;
}

// POST /api/files/{hash}/stopAndQuarantine {"Comment": "..."} (a Quell extension): one
// StopAndQuarantineFile action per device where the file was seen, each with the path seen
// there most recently as a hint. 201 with the actions; devices that could not get one (e.g.
// offboarded) are listed under "skipped" with the reason.
Response StopAndQuarantineEverywhere(ApiContext& api, Request& request) {
  const ActionTypeSpec* spec = FindActionType("StopAndQuarantineFile");
  Result<ApiToken> token = Authorize(api, request, spec->min_role);
  if (!token.ok()) return Response::FromStatus(token.status());
  Result<std::string> hash = FileHashParam(request, /*allow_md5=*/false);
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
  router.Add("GET", "/api/files/{hash}", [&api](Request& r) { return GetFile(api, r); });
  router.Add("POST", "/api/files/{hash}/download",
             [&api](Request& r) { return DownloadFile(api, r); });
  router.Add("GET", "/api/files/{hash}/sightings",
             [&api](Request& r) { return ListSightings(api, r); });
  router.Add("POST", "/api/files/{hash}/stopAndQuarantine",
             [&api](Request& r) { return StopAndQuarantineEverywhere(api, r); });
}

}  // namespace quell::server
