// What a Succeeded CollectFile action leaves on the server: the file as a sample
// (GET /api/files/{sha256}) and the record of where it came from.
#pragma once

#include "common/clock.h"
#include "common/status.h"
#include "server/store/store.h"

namespace quell::server {

// Records the collection `action` reported. The device's result is not trusted: its hashes
// must be well formed and the action must hold the uploaded artifact with that SHA-256 and
// size (the server checked those bytes itself), otherwise InvalidArgument. Recording the
// same action again is OK (a redelivered report).
Status RecordCollectedFile(Store& store, const MachineAction& action);

// The newest path device `machine_id` was seen with the file `sha256` at (its sightings),
// for a collection by hash. NotFound when the device never reported it.
Result<std::string> NewestSightedPath(Store& store, const std::string& machine_id,
                                      const std::string& sha256);

}  // namespace quell::server
