#include "server/gateway/file_sightings.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace quell::server {
namespace {

constexpr size_t kMaxPathLength = 4096;

// Lowercase hex of exactly `length` digits, or empty when `length` digits are not optional
// and the input is malformed. `optional`: an empty input stays empty and is valid.
bool NormalizeHex(const std::string& in, size_t length, bool optional, std::string& out) {
  if (in.empty() && optional) {
    out.clear();
    return true;
  }
  if (in.size() != length) return false;
  out.resize(length);
  for (size_t i = 0; i < length; ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (!std::isxdigit(c)) return false;
    out[i] = static_cast<char>(std::tolower(c));
  }
  return true;
}

}  // namespace

ParsedSightings ParseFileSightings(const std::string& device_id,
                                   const quell::v1::FileSightings& message, UnixMillis now) {
  ParsedSightings out;
  const int n = message.sightings_size();
  const size_t take = std::min(static_cast<size_t>(n), kMaxSightingsPerMessage);
  out.dropped = static_cast<size_t>(n) - take;
  for (size_t i = 0; i < take; ++i) {
    const quell::v1::FileSighting& in = message.sightings(static_cast<int>(i));
    FileSighting f{.device_id = device_id, .first_seen = now, .last_seen = now};
    bool ok = NormalizeHex(in.sha256(), 64, false, f.sha256) &&
              NormalizeHex(in.sha1(), 40, true, f.sha1) &&
              NormalizeHex(in.md5(), 32, true, f.md5) && !in.path().empty() &&
              in.path().front() == '/' && in.path().size() <= kMaxPathLength &&
              in.path().find('\0') == std::string::npos &&
              (in.source() == "exec" || in.source() == "scan");
    if (!ok) {
      ++out.dropped;
      continue;
    }
    f.path = in.path();
    f.source = in.source();
    out.valid.push_back(std::move(f));
  }
  return out;
}

std::vector<FileSighting> SightingsFromDetection(const std::string& device_id,
                                                 const quell::v1::Detection& detection,
                                                 UnixMillis now) {
  std::vector<FileSighting> out;
  auto evidence = nlohmann::json::parse(detection.evidence_json(), nullptr, false);
  if (!evidence.is_array()) return out;
  quell::v1::FileSightings as_message;
  for (const auto& e : evidence) {
    if (!e.is_object() || e.contains("archiveMemberPath")) continue;
    auto details = e.find("fileDetails");
    if (details == e.end() || !details->is_object()) continue;
    auto text = [&](const char* key) {
      auto it = details->find(key);
      return it != details->end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::string folder = text("filePath"), name = text("fileName");
    if (folder.empty() || name.empty()) continue;
    quell::v1::FileSighting s;
    s.set_sha256(text("sha256"));
    s.set_sha1(text("sha1"));
    s.set_md5(text("md5"));
    s.set_path(folder == "/" ? "/" + name : folder + "/" + name);
    s.set_source(detection.detection_source() == "Antivirus" ? "scan" : "exec");
    *as_message.add_sightings() = std::move(s);
  }
  return ParseFileSightings(device_id, as_message, now).valid;
}

}  // namespace quell::server
