// What the agent's detectors produce, and where they hand it over. Every detector (the
// antivirus scan, the execution restriction, later indicators and rules) reports through a
// DetectionSink; the agent's implementation spools each detection durably and sends it to
// the server, which turns it into an alert.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/clock.h"

namespace quell::agent {

struct Detection {
  std::string detector_id;       // stable id of the detector, e.g. "quell.av.clamav"
  std::string title;             // one line a person reads first
  std::string description;
  std::string severity = "Medium";  // Informational | Low | Medium | High
  std::string category;          // e.g. "Malware", "Execution"
  std::string detection_source;  // e.g. "Antivirus", "ExecutionRestriction"
  std::string threat_name;       // e.g. "Eicar-Signature", "YARA:rule_name"
  std::vector<std::string> mitre_techniques;  // e.g. {"T1204.002"}
  UnixMillis time = 0;
  // Evidence in the Defender alert-evidence shape, e.g.
  // [{"@odata.type":"#microsoft.graph.security.fileEvidence","fileDetails":{...},...}].
  nlohmann::json evidence = nlohmann::json::array();
  // Detections with the same key within the server's window update one alert instead of
  // creating new ones; typically detector + threat + file hash (+ device, added by the server).
  std::string dedup_key;
  std::string action_id;         // the action it was found during, if any
};

// Thread-safe: detectors report from their own threads.
class DetectionSink {
 public:
  virtual ~DetectionSink() = default;
  // Never blocks on the network; a detection reported here is not lost (durable first).
  virtual void Report(Detection detection) = 0;
};

}  // namespace quell::agent
