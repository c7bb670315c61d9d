#include "server/indicators/indicator_publisher.h"

#include <chrono>

#include "common/logging.h"
#include "server/indicators/indicator_model.h"

namespace quell::server {

// One device's sync in one round: from which version, whether as a snapshot, for what group.
struct IndicatorPublisher::Plan {
  std::string device_id;
  std::shared_ptr<AgentLink> link;
  uint64_t generation = 0;
  bool hello = false;
  uint64_t from = 0;
  bool full = false;
  std::string group;
};

IndicatorPublisher::IndicatorPublisher(Store& store, const Clock& clock,
                                       IndicatorPublisherOptions options)
    : store_(store), clock_(clock), options_(options) {}

IndicatorPublisher::~IndicatorPublisher() { Stop(); }

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
  {
    std::lock_guard lock(mu_);
    Peer& peer = peers_[link->device_id()];
    peer = Peer{};
    peer.link = link;
    peer.hello_version = agent_version;
    peer.wanted = ++generation_;
  }
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

Status IndicatorPublisher::PublishPending() {
  std::lock_guard publishing(publish_mu_);
  std::vector<Plan> plans;
  std::map<std::string, std::optional<uint64_t>> hello_versions;
  {
    std::lock_guard lock(mu_);
    for (auto it = peers_.begin(); it != peers_.end();) {
      std::shared_ptr<AgentLink> link = it->second.link.lock();
      if (!link) {
        it = peers_.erase(it);
        continue;
      }
      if (it->second.wanted > it->second.done) {
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
  std::vector<Plan> work;
  for (Plan& plan : plans) {
    auto known = groups.find(plan.device_id);
    std::string group;
    if (known != groups.end()) {
      group = known->second;
    } else {
      Result<Device> device = store_.GetDevice(plan.device_id);
      if (!device.ok()) continue;  // offboarded or deleted meanwhile: nothing to send
      group = device->rbac_group_name;
    }
    if (plan.hello) {
      uint64_t v = plan.from;
      bool group_matches = false;
      if (v != 0) {
        QUELL_ASSIGN_OR_RETURN(std::optional<IndicatorAckRecord> ack,
                               store_.GetIndicatorAck(plan.device_id));
        group_matches = ack && ack->group_name == group;
      }
      plan.full = v == 0 || v > current || v < static_cast<uint64_t>(info.delta_floor) ||
                  !group_matches;
    } else {
      plan.full = plan.group != group;
      if (!plan.full && plan.from >= current) {
        // Nothing new for this session; count the work as done.
        std::lock_guard lock(mu_);
        auto it = peers_.find(plan.device_id);
        if (it != peers_.end() && it->second.link.lock() == plan.link) {
          it->second.done = std::max(it->second.done, plan.generation);
        }
        continue;
      }
    }
    if (plan.full) plan.from = 0;
    plan.group = std::move(group);
    work.push_back(std::move(plan));
  }
  return Publish(work, info.current, clock_.Now());
}

// Reads each distinct base once and streams it, page by page, to every session that needs it.
Status IndicatorPublisher::Publish(std::vector<Plan>& plans, int64_t current, UnixMillis now) {
  std::map<std::pair<uint64_t, bool>, std::vector<Plan*>> by_base;
  for (Plan& plan : plans) by_base[{plan.from, plan.full}].push_back(&plan);
  for (auto& [base, sessions] : by_base) {
    auto [from, full] = base;
    auto after = static_cast<int64_t>(from);
    while (true) {
      QUELL_ASSIGN_OR_RETURN(
          std::vector<IndicatorChange> page,
          store_.ListIndicatorChanges(after, current, /*include_removed=*/!full,
                                      options_.chunk_size + 1));  // one more: is there more?
      bool more = page.size() > options_.chunk_size;
      if (more) page.pop_back();
      for (Plan* plan : sessions) {
        quell::v1::ServerMessage message;
        quell::v1::IndicatorDelta* delta = message.mutable_indicator_delta();
        delta->set_from_version(from);
        delta->set_to_version(static_cast<uint64_t>(current));
        delta->set_full(full);
        delta->set_more(more);
        for (const IndicatorChange& change : page) {
          if (change.indicator && IndicatorApplies(*change.indicator, plan->group, now)) {
            *delta->add_upserts() = ToWireIndicator(*change.indicator);
          } else if (!full) {
            // Deleted, expired, or no longer for this group: the agent drops it if it has it.
            delta->add_removed_ids(change.id);
          }
        }
        plan->link->Send(std::move(message));  // a session that has ended drops it
      }
      if (!more) break;
      after = page.back().version;
    }
    std::lock_guard lock(mu_);
    for (Plan* plan : sessions) {
      auto it = peers_.find(plan->device_id);
      if (it == peers_.end() || it->second.link.lock() != plan->link) continue;  // replaced
      Peer& peer = it->second;
      peer.hello_version.reset();
      peer.sent_version = static_cast<uint64_t>(current);
      peer.group = plan->group;
      peer.done = std::max(peer.done, plan->generation);
    }
    Logger("server.indicators")
        ->debug("version {} sent to {} device(s) ({} from {})", current, sessions.size(),
                full ? "snapshot" : "delta", from);
  }
  return Status::Ok();
}

void IndicatorPublisher::Run(std::stop_token stop) {
  auto log = Logger("server.indicators");
  UnixMillis last_prune = 0;
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, stop, std::chrono::seconds(60), [this] {
        for (const auto& [id, peer] : peers_) {
          if (peer.wanted > peer.done) return true;
        }
        return false;
      });
      if (stop.stop_requested()) return;
      // Let a burst of changes (an import in several calls) settle into one delta.
      cv_.wait_for(lock, stop, std::chrono::milliseconds(options_.batch_delay_ms),
                   [] { return false; });
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
