#include "agent/indicators/allowed_file_filter.h"

#include "common/logging.h"

namespace quell::agent {
namespace {

// Detectors differ: the scanners put the folder in filePath (Defender's fileDetails) and the
// name in fileName, the exec gate puts the whole path in filePath. A wrong guess costs only
// the certificate match (the matcher checks the file's SHA-256 before trusting its bytes).
std::string FullPath(const nlohmann::json& details) {
  std::string path = details.value("filePath", "");
  const std::string name = details.value("fileName", "");
  if (name.empty() || path == name || path.ends_with("/" + name)) return path;
  if (!path.empty() && path.back() != '/') path += '/';
  return path + name;
}

}  // namespace

void AllowedFileFilter::Report(Detection d) {
  if (!d.detector_id.starts_with("quell.indicators.") && d.evidence.is_array()) {
    for (const auto& e : d.evidence) {
      if (!e.is_object() || e.value("@odata.type", "") != "#microsoft.graph.security.fileEvidence") {
        continue;
      }
      const auto details = e.value("fileDetails", nlohmann::json::object());
      const std::string path = FullPath(details), sha256 = details.value("sha256", ""),
                        sha1 = details.value("sha1", ""), md5 = details.value("md5", "");
      auto m = match_(FileToMatch{.path = path, .sha256 = sha256, .sha1 = sha1, .md5 = md5});
      if (m && m->action == IndicatorAction::kAllowed) {
        ++suppressed_;
        Logger("agent.indicators")
            ->info("detection '{}' suppressed: {} is allowed by indicator {} ({})", d.title, path,
                   m->id, IndicatorTypeName(m->type));
        return;
      }
    }
  }
  next_.Report(std::move(d));
}

}  // namespace quell::agent
