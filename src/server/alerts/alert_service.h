// Alerts: ingestion of agent detections and the changes people make.
//
// Ingest turns one detection into an alert or, when the same device reported a detection with
// the same dedup_key into an alert that is not Resolved and was active within the dedup
// window, updates that alert (lastActivity, eventCount, merged evidence). Each detection id is
// recorded in the same transaction as the alert write, so a detection resent after a lost ack
// changes nothing (exactly once). Creation and updates are audited.
//
// Thread-safe. Concurrent writers to one alert are resolved by the store's version check
// (retried), so nothing here relies on a single server process.
#pragma once

#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "quell/v1/agent.pb.h"
#include "server/store/store.h"

namespace quell::server {

struct AlertServiceOptions {
  UnixMillis dedup_window_ms = 3600 * 1000;  // server flag --alert-dedup-window-seconds
};

// What a person may change (PATCH /api/alerts/{id}); unset fields are left alone.
// classification/determination take the MDE spellings; "" clears them.
struct AlertChanges {
  std::optional<AlertStatus> status;
  std::optional<std::string> assigned_to;
  std::optional<std::string> classification;
  std::optional<std::string> determination;
  std::optional<std::string> comment;  // appended to comments
};

class AlertService {
 public:
  enum class Outcome { kCreated, kUpdated, kDuplicate };
  struct Ingested {
    Outcome outcome = Outcome::kCreated;
    std::string alert_id;  // empty for kDuplicate
  };

  AlertService(Store& store, const Clock& clock, AlertServiceOptions options = {});

  // Stores the detection `device_id` reported. Errors are store trouble (the caller must not
  // acknowledge: the agent resends) or InvalidArgument for a detection without an id.
  Result<Ingested> Ingest(const std::string& device_id, const quell::v1::Detection& detection);

  // Applies `changes` (already validated enums; checked again here) as `actor`. NotFound,
  // InvalidArgument (a determination that does not fit the classification).
  Result<Alert> Update(const std::string& alert_id, const AlertChanges& changes,
                       const std::string& actor);

  const AlertServiceOptions& options() const { return options_; }

 private:
  Store& store_;
  const Clock& clock_;
  const AlertServiceOptions options_;
};

}  // namespace quell::server
