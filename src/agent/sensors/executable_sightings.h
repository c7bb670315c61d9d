// Where executables live: the agent looks at the executables of running processes and tells
// the server which files (by SHA-256, SHA-1, MD5) it saw run where, so a fleet-wide action on
// a hash (stop and quarantine everywhere) knows which devices to ask.
//
// A pass reads /proc/<pid>/exe of every process in the agent's own mount namespace (a path in
// another namespace, e.g. a container's, does not name a file on this host's view), hashes
// each file version once (cached by device, inode, size, mtime, ctime and path) and returns
// the sightings that are new or were last reported long enough ago.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "common/hash.h"
#include "quell/v1/agent.pb.h"

namespace quell::agent::sensors {

struct SightingsOptions {
  std::string proc_root = "/proc";
  // readlink of /proc/self/ns/mnt, e.g. "mnt:[4026531841]"; empty = read it at construction.
  std::string own_mount_namespace;
  // A file still running is reported again after this long (the server keeps last_seen).
  UnixMillis report_again_after_ms = 24LL * 3600 * 1000;
  uint64_t max_file_bytes = 256ull << 20;  // larger executables are not hashed
  // New files hashed per pass at most, so one pass on a busy host stays short; the rest are
  // picked up by the next passes.
  size_t max_new_files_per_pass = 256;
};

class ExecutableSightings {
 public:
  ExecutableSightings(SightingsOptions options, const Clock& clock);

  // One look at the running processes. Returns the sightings due for reporting and marks them
  // reported; the caller sends them (only call it when they can be sent).
  std::vector<quell::v1::FileSighting> Collect();

  size_t known_files() const { return known_.size(); }

 private:
  // What identifies one version of one file at one path.
  using Key = std::tuple<dev_t, ino_t, int64_t /*size*/, int64_t /*mtime_ns*/,
                         int64_t /*ctime_ns*/, std::string /*path*/>;
  struct Known {
    FileHashes hashes;
    UnixMillis reported = 0;   // 0: never
    UnixMillis last_seen = 0;  // last pass that found it running
  };

  SightingsOptions options_;
  const Clock& clock_;
  std::map<Key, Known> known_;
};

}  // namespace quell::agent::sensors
