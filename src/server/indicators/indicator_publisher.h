// Keeps every connected agent's indicators current with versioned deltas.
//
// On Hello the agent states the version it has applied; the publisher answers with the
// changes since then (filtered to the device's group, expired indicators left out), or a full
// snapshot when a delta cannot be exact: version 0, a version newer than the server's (a
// restored database), a base older than the retained tombstones, or a device whose group
// changed since its last acknowledged sync. After any change (Changed()), every connected
// session gets the delta from what it was last sent. Work happens on one background thread,
// batched: an API call never waits for agents. Large deltas go out in chunks of
// `chunk_size` changes with `more` set on all but the last.
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/status.h"
#include "server/gateway/agent_link.h"
#include "server/store/store.h"

namespace quell::server {

struct IndicatorPublisherOptions {
  size_t chunk_size = 5000;                 // changes per IndicatorDelta message
  UnixMillis batch_delay_ms = 100;          // changes this close together go out as one delta
  UnixMillis tombstone_retention_ms = 30LL * 24 * 3600 * 1000;  // then deltas need a snapshot
};

class IndicatorPublisher {
 public:
  IndicatorPublisher(Store& store, const Clock& clock, IndicatorPublisherOptions options = {});
  ~IndicatorPublisher();  // stops the worker
  IndicatorPublisher(const IndicatorPublisher&) = delete;
  IndicatorPublisher& operator=(const IndicatorPublisher&) = delete;

  // Starts the background worker. Without it, PublishPending() does the work when called.
  void Start();
  void Stop();

  // The device of `link` said Hello having applied `agent_version`; replaces any earlier
  // session of that device.
  void Connected(std::shared_ptr<AgentLink> link, uint64_t agent_version);
  // Indicators or device groups changed: every connected device gets its delta soon.
  void Changed();
  // The device applied and persisted `version` (IndicatorAck); recorded in the store.
  Status Acknowledged(const std::string& device_id, uint64_t version);

  // Sends every pending delta now, on the calling thread. Serialized with the worker.
  Status PublishPending();

  // True once Connected() was called for the device and its link has not ended.
  bool Tracks(const std::string& device_id);

 private:
  struct Peer {
    std::weak_ptr<AgentLink> link;
    std::optional<uint64_t> hello_version;  // set until the first sync after Hello
    uint64_t sent_version = 0;              // what the session was last brought to
    std::string group;                      // the device group that sync was computed for
    uint64_t wanted = 0;                    // generation of the last request for work
    uint64_t done = 0;                      // generation its last completed sync covered
  };
  struct Plan;

  void Run(std::stop_token stop);
  Status Publish(std::vector<Plan>& plans, int64_t current, UnixMillis now);

  Store& store_;
  const Clock& clock_;
  const IndicatorPublisherOptions options_;

  std::mutex publish_mu_;  // one PublishPending at a time

  std::mutex mu_;  // guards everything below
  std::condition_variable_any cv_;
  std::map<std::string, Peer> peers_;
  uint64_t generation_ = 0;
  std::jthread worker_;
};

}  // namespace quell::server
