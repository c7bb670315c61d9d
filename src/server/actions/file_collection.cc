#include "server/actions/file_collection.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace quell::server {
namespace {

bool IsLowerHex(const std::string& s, size_t length) {
  return s.size() == length && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string StringField(const nlohmann::json& result, const char* key) {
  auto it = result.find(key);
  return it != result.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Status RecordCollectedFile(Store& store, const MachineAction& action) {
  nlohmann::json result = nlohmann::json::parse(action.result_json, nullptr, false);
  if (!result.is_object()) return InvalidArgument("CollectFile result is not a JSON object");
  const std::string sha256 = StringField(result, "Sha256");
  const std::string sha1 = StringField(result, "Sha1");
  const std::string md5 = StringField(result, "Md5");
  if (!IsLowerHex(sha256, 64) || !IsLowerHex(sha1, 40) || !IsLowerHex(md5, 32)) {
    return InvalidArgument("CollectFile result needs Sha256, Sha1 and Md5 in lowercase hex");
  }
  QUELL_ASSIGN_OR_RETURN(ActionArtifact artifact,
                         store.GetActionArtifact(action.id, StringField(result, "Artifact")));
  if (artifact.sha256 != sha256) {
    return InvalidArgument("CollectFile result names " + sha256 + " but the upload was " +
                           artifact.sha256);
  }
  const UnixMillis now = action.last_update_time;
  SampleFile file{.sha256 = sha256,
                  .sha1 = sha1,
                  .md5 = md5,
                  .size = artifact.size,
                  .file_name = StringField(result, "FileName"),
                  .first_collected = now,
                  .last_collected = now};
  FileCollection collection{.sha256 = sha256,
                            .action_id = action.id,
                            .machine_id = action.machine_id,
                            .path = StringField(result, "Path"),
                            .requestor = action.requestor,
                            .collected = now};
  Status recorded = store.RecordFileCollection(file, collection);
  if (recorded.code() == StatusCode::kAlreadyExists) return Status::Ok();
  return recorded;
}

Result<std::string> NewestSightedPath(Store& store, const std::string& machine_id,
                                      const std::string& sha256) {
  constexpr size_t kMaxSightings = 100'000;
  QUELL_ASSIGN_OR_RETURN(std::vector<FileSighting> sightings,
                         store.ListFileSightings(sha256, kMaxSightings));
  for (const FileSighting& f : sightings) {  // newest first
    if (f.device_id == machine_id && f.sha256 == sha256) return f.path;
  }
  return NotFound("file " + sha256 + " has not been seen on device " + machine_id);
}

}  // namespace quell::server
