#include "server/indicators/indicator_publisher.h"

#include <chrono>
#include <tuple>

#include "common/logging.h"
#include "server/indicators/indicator_model.h"

namespace quell::server {

// One device's sync about to start: from which version, whether as a snapshot, for what group.
struct IndicatorPublisher::Plan {
  std::string device_id;
  std::shared_ptr<AgentLink> link;
  uint64_t generation = 0;
  bool hello = false;
  uint64_t from = 0;
  bool full = false;
  std::string group;
};

// A transfer being pumped, copied out of its Peer so the links are used without mu_.
struct IndicatorPublisher::Active {
  std::string device_id;
  std::shared_ptr<AgentLink> link;
  Transfer transfer;
};

IndicatorPublisher::IndicatorPublisher(Store& store, const Clock& clock,
                                       IndicatorPublisherOptions options)
    : store_(store), clock_(clock), options_(options) {}

IndicatorPublisher::~IndicatorPublisher() {
  Stop();
  // Links may outlive the publisher: take the drain callbacks (which point here) back.
  // Without mu_: a callback runs under its link's lock and takes mu_.
  std::vector<std::shared_ptr<AgentLink>> links;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, peer] : peers_) {
      if (auto link = peer.link.lock()) links.push_back(std::move(link));
    }
  }
  for (auto& link : links) link->SetOnDrain(nullptr);
}

void IndicatorPublisher::Start() {
  worker_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

void IndicatorPublisher::Stop() {
  if (!worker_.joinable()) return;
  worker_.request_stop();
  cv_.notify_all();
  worker_.join();
}

void IndicatorPublisher::Connected(std::shared_ptr<AgentLink> link, uint64_t agent_version) {
  AgentLink* hooked = link.get();
  link->SetOnDrain([this, id = link->device_id(), hooked] {
    {
      std::lock_guard lock(mu_);
      auto it = peers_.find(id);
      // Only a drain that can unblock a transfer is worth waking the worker for.
      if (it == peers_.end() || !it->second.transfer || it->second.link.lock().get() != hooked) {
        return;
      }
      ++drains_;
    }
    cv_.notify_all();
  });
  std::shared_ptr<AgentLink> replaced;
  {
    std::lock_guard lock(mu_);
    Peer& peer = peers_[link->device_id()];
    replaced = peer.link.lock();
    peer = Peer{};  // drops a transfer to the earlier session
    peer.link = link;
    peer.hello_version = agent_version;
    peer.wanted = ++generation_;
  }
  if (replaced && replaced != link) replaced->SetOnDrain(nullptr);
  cv_.notify_all();
}

void IndicatorPublisher::Changed() {
  {
    std::lock_guard lock(mu_);
    ++generation_;
    for (auto& [id, peer] : peers_) peer.wanted = generation_;
  }
  cv_.notify_all();
}

Status IndicatorPublisher::Acknowledged(const std::string& device_id, uint64_t version) {
  std::optional<std::string> group;
  {
    std::lock_guard lock(mu_);
    auto it = peers_.find(device_id);
    if (it != peers_.end() && !it->second.hello_version && version <= it->second.sent_version) {
      group = it->second.group;
    }
  }
  if (!group) {
    // Not what this server sent in this session (or not known): the device's group now is
    // the best statement; a wrong one only costs a snapshot at the next Hello.
    QUELL_ASSIGN_OR_RETURN(Device device, store_.GetDevice(device_id));
    group = device.rbac_group_name;
  }
  return store_.RecordIndicatorAck(device_id, {.version = static_cast<int64_t>(version),
                                               .group_name = *group,
                                               .time = clock_.Now()});
}

bool IndicatorPublisher::Tracks(const std::string& device_id) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(device_id);
  return it != peers_.end() && !it->second.link.expired();
}

bool IndicatorPublisher::HasNewWorkLocked() const {
  for (const auto& [id, peer] : peers_) {
    if (!peer.transfer && peer.wanted > peer.done) return true;
  }
  return false;
}

bool IndicatorPublisher::HasTransfersLocked() const {
  for (const auto& [id, peer] : peers_) {
    if (peer.transfer) return true;
  }
  return false;
}

Status IndicatorPublisher::PublishPending() {
  std::lock_guard publishing(publish_mu_);
  {
    std::lock_guard lock(mu_);
    drains_seen_ = drains_;  // a drain from here on is seen by the worker's next wait
  }
  while (true) {
    QUELL_RETURN_IF_ERROR(StartTransfers());
    QUELL_ASSIGN_OR_RETURN(bool completed, Pump());
    // A completed transfer may leave work behind (changes made while it was paged).
    if (!completed) return Status::Ok();
  }
}

Status IndicatorPublisher::StartTransfers() {
  std::vector<Plan> plans;
  {
    std::lock_guard lock(mu_);
    for (auto it = peers_.begin(); it != peers_.end();) {
      std::shared_ptr<AgentLink> link = it->second.link.lock();
      if (!link) {
        it = peers_.erase(it);
        continue;
      }
      if (!it->second.transfer && it->second.wanted > it->second.done) {
        Plan plan;
        plan.device_id = it->first;
        plan.link = std::move(link);
        plan.generation = it->second.wanted;
        plan.hello = it->second.hello_version.has_value();
        plan.from = it->second.hello_version.value_or(it->second.sent_version);
        plan.group = it->second.group;  // the group of the last sync, compared below
        plans.push_back(std::move(plan));
      }
      ++it;
    }
  }
  if (plans.empty()) return Status::Ok();

  QUELL_ASSIGN_OR_RETURN(IndicatorVersionInfo info, store_.GetIndicatorVersion());
  const auto current = static_cast<uint64_t>(info.current);
  std::map<std::string, std::string> groups;  // device id -> rbac group now
  if (plans.size() > 16) {
    QUELL_ASSIGN_OR_RETURN(std::vector<Device> devices, store_.ListDevices());
    for (Device& d : devices) groups.emplace(d.id, std::move(d.rbac_group_name));
  }
  for (Plan& plan : plans) {
    auto known = groups.find(plan.device_id);
    std::string group;
    bool idle = false;
    if (known != groups.end()) {
      group = known->second;
    } else if (Result<Device> device = store_.GetDevice(plan.device_id); device.ok()) {
      group = device->rbac_group_name;
    } else {
      idle = true;  // deleted meanwhile: nothing to send
    }
    if (!idle && plan.hello) {
      uint64_t v = plan.from;
      bool group_matches = false;
      if (v != 0) {
        QUELL_ASSIGN_OR_RETURN(std::optional<IndicatorAckRecord> ack,
                               store_.GetIndicatorAck(plan.device_id));
        group_matches = ack && ack->group_name == group;
      }
      plan.full = v == 0 || v > current || v < static_cast<uint64_t>(info.delta_floor) ||
                  !group_matches;
    } else if (!idle) {
      plan.full = plan.group != group;
      idle = !plan.full && plan.from >= current;  // nothing new for this session
    }
    std::lock_guard lock(mu_);
    auto it = peers_.find(plan.device_id);
    if (it == peers_.end() || it->second.link.lock() != plan.link) continue;  // replaced
    Peer& peer = it->second;
    if (idle) {
      peer.done = std::max(peer.done, plan.generation);
      continue;
    }
    peer.transfer = Transfer{.from = plan.full ? 0 : plan.from,
                             .to = current,
                             .full = plan.full,
                             .cursor = plan.full ? 0 : static_cast<int64_t>(plan.from),
                             .group = std::move(group),
                             .generation = plan.generation};
  }
  return Status::Ok();
}

// Rounds: every session whose link has room gets its next chunk; sessions at the same point
// of the same transfer (agents syncing together) share one page read. Ends when no session
// can take more.
Result<bool> IndicatorPublisher::Pump() {
  auto log = Logger("server.indicators");
  bool completed = false;
  while (true) {
    std::vector<Active> active;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, peer] : peers_) {
        if (!peer.transfer) continue;
        std::shared_ptr<AgentLink> link = peer.link.lock();
        if (link) active.push_back({id, std::move(link), *peer.transfer});
      }
    }
    // (cursor, to, full) -> sessions with room for a chunk of that page.
    std::map<std::tuple<int64_t, uint64_t, bool>, std::vector<Active*>> ready;
    std::vector<Active*> ended;
    for (Active& a : active) {
      std::optional<AgentBacklog> queued = a.link->Queued();
      if (!queued) {
        ended.push_back(&a);
      } else if (queued->messages < options_.max_queued_messages &&
                 queued->bytes < options_.max_queued_bytes) {
        ready[{a.transfer.cursor, a.transfer.to, a.transfer.full}].push_back(&a);
      }
    }
    if (!ended.empty()) {
      std::lock_guard lock(mu_);
      for (Active* a : ended) {
        auto it = peers_.find(a->device_id);
        if (it != peers_.end() && it->second.link.lock() == a->link) peers_.erase(it);
      }
    }
    if (ready.empty()) return completed;

    const UnixMillis now = clock_.Now();
    for (auto& [key, sessions] : ready) {
      auto [cursor, to, full] = key;
      QUELL_ASSIGN_OR_RETURN(
          std::vector<IndicatorChange> page,
          store_.ListIndicatorChanges(cursor, static_cast<int64_t>(to),
                                      /*include_removed=*/!full,
                                      options_.chunk_size + 1));  // one more: is there more?
      const bool more = page.size() > options_.chunk_size;
      if (more) page.pop_back();
      const int64_t next = page.empty() ? cursor : page.back().version;
      for (Active* a : sessions) {
        quell::v1::ServerMessage message;
        quell::v1::IndicatorDelta* delta = message.mutable_indicator_delta();
        delta->set_from_version(a->transfer.from);
        delta->set_to_version(to);
        delta->set_full(full);
        delta->set_more(more);
        for (const IndicatorChange& change : page) {
          if (change.indicator && IndicatorApplies(*change.indicator, a->transfer.group, now)) {
            *delta->add_upserts() = ToWireIndicator(*change.indicator);
          } else if (!full) {
            // Deleted, expired, or no longer for this group: the agent drops it if it has it.
            delta->add_removed_ids(change.id);
          }
        }
        const bool sent = a->link->Send(std::move(message));
        std::lock_guard lock(mu_);
        auto it = peers_.find(a->device_id);
        if (it == peers_.end() || it->second.link.lock() != a->link || !it->second.transfer) {
          continue;  // replaced by a newer session meanwhile
        }
        Peer& peer = it->second;
        if (!sent) {  // the stream ended: its reconnect starts over from its Hello
          peers_.erase(it);
          continue;
        }
        if (more) {
          peer.transfer->cursor = next;
          continue;
        }
        log->debug("device={} brought to version {} ({} from {})", a->device_id, to,
                   full ? "snapshot" : "delta", a->transfer.from);
        peer.hello_version.reset();
        peer.sent_version = to;
        peer.group = a->transfer.group;
        peer.done = std::max(peer.done, a->transfer.generation);
        peer.transfer.reset();
        completed = true;
      }
    }
  }
}

void IndicatorPublisher::Run(std::stop_token stop) {
  auto log = Logger("server.indicators");
  UnixMillis last_prune = 0;
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, stop, std::chrono::seconds(60), [this] {
        return HasNewWorkLocked() || (drains_ != drains_seen_ && HasTransfersLocked());
      });
      if (stop.stop_requested()) return;
      if (HasNewWorkLocked() && !HasTransfersLocked()) {
        // Let a burst of changes (an import in several calls) settle into one delta.
        cv_.wait_for(lock, stop, std::chrono::milliseconds(options_.batch_delay_ms),
                     [] { return false; });
      }
    }
    if (Status published = PublishPending(); !published.ok()) {
      log->error("sending indicator deltas failed: {}", published.ToString());
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
    }
    UnixMillis now = clock_.Now();
    if (now - last_prune > 3'600'000) {
      last_prune = now;
      if (Status pruned = store_.PruneIndicatorTombstones(now - options_.tombstone_retention_ms);
          !pruned.ok()) {
        log->error("pruning indicator tombstones failed: {}", pruned.ToString());
      }
    }
  }
}

}  // namespace quell::server
