// Keeps every connected agent's indicators current with versioned deltas.
//
// On Hello the agent states the version it has applied; the publisher answers with the
// changes since then (filtered to the device's group, expired indicators left out), or a full
// snapshot when a delta cannot be exact: version 0, a version newer than the server's (a
// restored database), a base older than the retained tombstones, or a device whose group
// changed since its last acknowledged sync. After any change (Changed()), every connected
// session gets the delta from what it was last sent. Work happens on one background thread,
// batched: an API call never waits for agents.
//
// Every transfer (snapshot or delta) goes out in chunks of `chunk_size` changes with `more`
// set on all but the last, read from the store page by page (version > cursor) and sent to a
// session only while its link holds fewer than `max_queued_messages` messages and
// `max_queued_bytes` bytes; the link's drain callback resumes it. So the memory a session
// costs is a couple of chunks whatever the number of indicators, and a slow agent holds back
// only itself. A transfer is computed up to the version V0 current when it started; what
// changes while it is paged (an indicator may move past V0 before its page is read) follows
// as the delta V0 -> current right after the transfer's last chunk.
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
  // Flow control: the next chunk waits while a session's link holds this many messages or
  // bytes (every message queued to the agent counts, not only indicator chunks).
  size_t max_queued_messages = 2;
  size_t max_queued_bytes = 4u << 20;
};

class IndicatorPublisher {
 public:
  IndicatorPublisher(Store& store, const Clock& clock, IndicatorPublisherOptions options = {});
  ~IndicatorPublisher();  // stops the worker and unhooks from every link
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

  // Starts every pending transfer and sends chunks until each session's link is full or its
  // transfer is done, on the calling thread. Serialized with the worker. A transfer held back
  // by a full link continues at the next call (the worker calls again when a link drains).
  Status PublishPending();

  // True once Connected() was called for the device and its link has not ended.
  bool Tracks(const std::string& device_id);

 private:
  // A sync in progress: changes with cursor < version <= to, page by page.
  struct Transfer {
    uint64_t from = 0;   // the agent's base (0 for a snapshot)
    uint64_t to = 0;     // V0: the version current when the transfer started
    bool full = false;
    int64_t cursor = 0;  // version of the last change sent
    std::string group;   // the device group it is computed for
    uint64_t generation = 0;
  };
  struct Peer {
    std::weak_ptr<AgentLink> link;
    std::optional<uint64_t> hello_version;  // set until the first sync after Hello
    uint64_t sent_version = 0;              // what the session was last brought to
    std::string group;                      // the device group that sync was computed for
    uint64_t wanted = 0;                    // generation of the last request for work
    uint64_t done = 0;                      // generation its last completed sync covered
    std::optional<Transfer> transfer;       // at most one at a time per session
  };
  struct Plan;
  struct Active;

  void Run(std::stop_token stop);
  // Turns pending work of idle sessions into transfers.
  Status StartTransfers();
  // Sends chunks while links have room; returns whether some transfer completed.
  Result<bool> Pump();
  bool HasNewWorkLocked() const;
  bool HasTransfersLocked() const;

  Store& store_;
  const Clock& clock_;
  const IndicatorPublisherOptions options_;

  std::mutex publish_mu_;  // one PublishPending at a time

  std::mutex mu_;  // guards everything below
  std::condition_variable_any cv_;
  std::map<std::string, Peer> peers_;
  uint64_t generation_ = 0;
  uint64_t drains_ = 0;       // drain callbacks of links with a transfer in progress
  uint64_t drains_seen_ = 0;  // drains_ when the last PublishPending began
  std::jthread worker_;
};

}  // namespace quell::server
