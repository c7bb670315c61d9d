#include "agent/state/action_journal.h"

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include <cerrno>

#include "common/files.h"

namespace quell::agent {

namespace {
constexpr std::string_view kSuffix = ".json";
}  // namespace

bool IsSafeActionId(const std::string& action_id) {
  if (action_id.empty() || action_id.size() > 128) return false;
  for (char c : action_id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

Result<std::unique_ptr<ActionJournal>> ActionJournal::Open(std::string dir, const Clock& clock) {
  std::unique_ptr<ActionJournal> journal(new ActionJournal(std::move(dir), clock));
  QUELL_RETURN_IF_ERROR(MakeDirs(journal->dir_, 0700));
  return journal;
}

Result<std::string> ActionJournal::PathOf(const std::string& action_id) const {
  if (!IsSafeActionId(action_id)) return InvalidArgument("malformed action id");
  return dir_ + "/" + action_id + std::string(kSuffix);
}

Result<ActionJournal::Record> ActionJournal::Lookup(const std::string& action_id) const {
  QUELL_ASSIGN_OR_RETURN(std::string path, PathOf(action_id));
  auto text = ReadFile(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return Record{};
    return text.status();
  }
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return Internal("journal entry " + path + " is corrupt");
  Record record;
  record.type = doc.value("type", "");
  if (doc.value("state", "") == "finished" && doc.contains("final_update")) {
    quell::v1::ActionUpdate update;
    auto parsed = google::protobuf::util::JsonStringToMessage(doc["final_update"].dump(), &update);
    if (!parsed.ok()) return Internal("journal entry " + path + " has a corrupt final update");
    record.state = State::kFinished;
    record.final_update = std::move(update);
  } else {
    record.state = State::kStarted;
  }
  return record;
}

Status ActionJournal::MarkStarted(const std::string& action_id, const std::string& type) {
  QUELL_ASSIGN_OR_RETURN(std::string path, PathOf(action_id));
  nlohmann::json doc = {{"state", "started"}, {"type", type}, {"started_unix_ms", clock_.Now()}};
  return WriteFileAtomic(path, doc.dump() + "\n", 0600);
}

Status ActionJournal::MarkFinished(const std::string& action_id, const std::string& type,
                                   const quell::v1::ActionUpdate& final_update) {
  QUELL_ASSIGN_OR_RETURN(std::string path, PathOf(action_id));
  std::string update_json;
  if (!google::protobuf::util::MessageToJsonString(final_update, &update_json).ok()) {
    return Internal("cannot encode final update");
  }
  nlohmann::json doc = {{"state", "finished"},
                        {"type", type},
                        {"finished_unix_ms", clock_.Now()},
                        {"final_update", nlohmann::json::parse(update_json)}};
  return WriteFileAtomic(path, doc.dump() + "\n", 0600);
}

Status ActionJournal::PruneFinishedBefore(UnixMillis cutoff) {
  QUELL_ASSIGN_OR_RETURN(std::vector<std::string> names, ListFiles(dir_));
  for (const std::string& name : names) {
    if (!name.ends_with(kSuffix)) continue;
    const std::string path = dir_ + "/" + name;
    auto text = ReadFile(path);
    if (!text.ok()) continue;
    nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
    if (!doc.is_object() || doc.value("state", "") != "finished") continue;
    if (doc.value("finished_unix_ms", UnixMillis{0}) < cutoff) {
      QUELL_RETURN_IF_ERROR(RemoveFile(path));
    }
  }
  return Status::Ok();
}

}  // namespace quell::agent
