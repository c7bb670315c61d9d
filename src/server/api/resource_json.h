// The REST resources in the Defender API's shapes (field names and enum values exactly as
// in the MDE reference), plus clearly named Quell extensions. Pure functions, unit-tested.
#pragma once

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "server/store/store.h"

namespace quell::server {

// healthStatus: "Active" when the device was heard from within `inactive_after_ms`,
// otherwise "Inactive".
nlohmann::json MachineToJson(const Device& device, UnixMillis now, UnixMillis inactive_after_ms);

nlohmann::json MachineActionToJson(const MachineAction& action);

nlohmann::json AuditEntryToJson(const AuditEntry& entry);

}  // namespace quell::server
