#include "agent/detect/spooled_detection_sink.h"

#include "common/ids.h"
#include "common/logging.h"

namespace quell::agent {

quell::v1::AgentMessage DetectionToMessage(const Detection& detection,
                                           const std::string& detection_id, UnixMillis now) {
  quell::v1::AgentMessage message;
  quell::v1::Detection& d = *message.mutable_detection();
  d.set_detection_id(detection_id);
  d.set_detector_id(detection.detector_id);
  d.set_title(detection.title);
  d.set_description(detection.description);
  d.set_severity(detection.severity);
  d.set_category(detection.category);
  d.set_detection_source(detection.detection_source);
  d.set_threat_name(detection.threat_name);
  for (const std::string& t : detection.mitre_techniques) d.add_mitre_techniques(t);
  d.set_time_unix_ms(detection.time != 0 ? detection.time : now);
  d.set_evidence_json(detection.evidence.is_array() ? detection.evidence.dump()
                                                    : nlohmann::json::array().dump());
  d.set_dedup_key(detection.dedup_key);
  d.set_action_id(detection.action_id);
  return message;
}

SpooledDetectionSink::SpooledDetectionSink(Spool& spool, const Clock& clock, IdGenerator new_id)
    : spool_(spool), clock_(clock), new_id_(new_id ? std::move(new_id) : IdGenerator(NewUuid)) {}

void SpooledDetectionSink::Report(Detection detection) {
  quell::v1::AgentMessage message = DetectionToMessage(detection, new_id_(), clock_.Now());
  // Append assigns the sequence inside `message`, so what is sent is what was spooled.
  if (auto appended = spool_.Append(message); !appended.ok()) {
    Logger("agent.detect")
        ->error("cannot spool detection {} ({}): {}; sending it without a delivery guarantee",
                message.detection().detection_id(), detection.title,
                appended.status().ToString());
  }
  std::lock_guard lock(mu_);
  ++reported_;
  Logger("agent.detect")
      ->info("detection {} {} [{}] {}", message.detection().detection_id(),
             detection.detector_id, detection.severity, detection.title);
  if (live_ != nullptr) live_->Send(std::move(message));
}

void SpooledDetectionSink::Attach(MessageSink* live) {
  std::lock_guard lock(mu_);
  live_ = live;
}

uint64_t SpooledDetectionSink::reported() const {
  std::lock_guard lock(mu_);
  return reported_;
}

}  // namespace quell::agent
