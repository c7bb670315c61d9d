#include "agent/indicators/allowed_file_filter.h"

#include "common/logging.h"

namespace quell::agent {

void AllowedFileFilter::Report(Detection d) {
  if (!d.detector_id.starts_with("quell.indicators.") && d.evidence.is_array()) {
    for (const auto& e : d.evidence) {
      if (!e.is_object() || e.value("@odata.type", "") != "#microsoft.graph.security.fileEvidence") {
        continue;
      }
      const auto details = e.value("fileDetails", nlohmann::json::object());
      auto m = match_(details.value("sha256", ""), details.value("sha1", ""), details.value("md5", ""));
      if (m && m->action == IndicatorAction::kAllowed) {
        ++suppressed_;
        Logger("agent.indicators")
            ->info("detection '{}' suppressed: {} is allowed by indicator {}", d.title,
                   details.value("filePath", ""), m->id);
        return;
      }
    }
  }
  next_.Report(std::move(d));
}

}  // namespace quell::agent
