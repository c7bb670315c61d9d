// Turns the FileSightings an agent sends into store records. Agents are not trusted to send
// well-formed data: entries with a malformed hash, path or source are dropped (and counted),
// the rest are kept, so one bad entry does not lose a batch.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/clock.h"
#include "quell/v1/agent.pb.h"
#include "server/store/store.h"

namespace quell::server {

// At most this many sightings are taken from one message; the rest are dropped.
inline constexpr size_t kMaxSightingsPerMessage = 1000;

struct ParsedSightings {
  std::vector<FileSighting> valid;
  size_t dropped = 0;
};

// Hashes are lowercased; first_seen = last_seen = `now` (the server's clock, not the agent's).
ParsedSightings ParseFileSightings(const std::string& device_id,
                                   const quell::v1::FileSightings& message, UnixMillis now);

// Sightings carried by a detection's file evidence (Defender shape: fileDetails.filePath is
// the folder, fileName the name, sha256/sha1/md5 the hashes). Source "scan" for antivirus
// detections, "exec" for the others (a blocked or audited execution). Evidence about an
// archive member names no file of its own and is skipped, as is malformed evidence.
std::vector<FileSighting> SightingsFromDetection(const std::string& device_id,
                                                 const quell::v1::Detection& detection,
                                                 UnixMillis now);

}  // namespace quell::server
