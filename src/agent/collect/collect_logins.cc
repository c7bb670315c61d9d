// "Logins": who is logged in now (utmp), the recent login/logout/boot history (wtmp) and
// failed logins (btmp), each as a readable table plus all of them in logins.json.
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"
#include "agent/collect/login_records.h"

namespace quell::agent::collect {
namespace {

constexpr std::string_view kTopic = "Logins";
// wtmp and btmp grow for years (btmp by millions under a brute-force attack): the recent tail
// is what an investigation needs.
constexpr size_t kMaxHistoryRecords = 1000;

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

struct LoginFile {
  std::string key;        // in logins.json
  std::string text_name;  // the table's artifact
  std::vector<std::string> host_paths;  // the first that exists is read
  size_t max_records;     // 0: all
  bool required;          // a missing file is a failure (else: simply nothing to show)
  bool newest_first;
};

}  // namespace

void CollectLogins(const CollectSources& sources, PackageStaging& out) {
  if (out.Exhausted()) return;
  const std::vector<LoginFile> login_files = {
      {"current_sessions", "current_sessions.txt", {"/run/utmp", "/var/run/utmp"}, 0, true, false},
      {"recent_logins", "recent_logins.txt", {"/var/log/wtmp"}, kMaxHistoryRecords, true, true},
      {"failed_logins", "failed_logins.txt", {"/var/log/btmp"}, kMaxHistoryRecords, false, true},
  };
  nlohmann::json all = nlohmann::json::object();
  for (const LoginFile& f : login_files) {
    std::string path;
    for (const std::string& p : f.host_paths) {
      if (Exists(files::Under(sources, p))) {
        path = files::Under(sources, p);
        break;
      }
    }
    if (path.empty()) {
      if (f.required) out.RecordFailure(kTopic, files::Under(sources, f.host_paths[0]), "does not exist");
      continue;
    }
    size_t total = 0;
    auto records = ReadLoginRecords(path, f.max_records, &total);
    if (!records.ok()) {
      out.RecordFailure(kTopic, path, records.status().message());
      continue;
    }
    if (f.key == "current_sessions") {
      // Sessions are the USER_PROCESS entries; the rest of utmp is bookkeeping.
      std::erase_if(*records, [](const LoginRecord& r) { return r.type != "USER_PROCESS"; });
    }
    if (f.newest_first) std::reverse(records->begin(), records->end());
    std::string header = "# " + path + ": ";
    header += f.max_records != 0 && total > f.max_records
                  ? "the last " + std::to_string(records->size()) + " of " + std::to_string(total) + " records"
                  : std::to_string(records->size()) + " records";
    header += f.newest_first ? ", newest first\n" : "\n";
    out.AddText(kTopic, f.text_name, header + LoginRecordsTableText(*records), path);
    all[f.key] = {{"source", path}, {"records_in_file", total}, {"records", LoginRecordsToJson(*records)}};
    if (out.Exhausted()) return;
  }
  if (!all.empty()) out.AddJson(kTopic, "logins.json", all);
}

}  // namespace quell::agent::collect
