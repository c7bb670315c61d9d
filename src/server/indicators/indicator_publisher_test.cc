#include "server/indicators/indicator_publisher.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <thread>

#include "common/testing/temp_dir.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server {
namespace {

constexpr UnixMillis kT0 = 1'800'000'000'000;

// Records what the publisher sends to one agent.
class RecordingStream final : public AgentStream {
 public:
  void Enqueue(quell::v1::ServerMessage message) override {
    std::lock_guard lock(mu);
    messages.push_back(std::move(message));
  }
  void Terminate(int, const std::string&) override {}

  std::vector<quell::v1::IndicatorDelta> Deltas() {
    std::lock_guard lock(mu);
    std::vector<quell::v1::IndicatorDelta> out;
    for (const auto& m : messages) {
      if (m.has_indicator_delta()) out.push_back(m.indicator_delta());
    }
    messages.clear();
    return out;
  }
  std::mutex mu;  // the worker test sends from another thread
  std::vector<quell::v1::ServerMessage> messages;
};

// A stream with a queue that the test (or a thread of it) empties: what a slow agent looks
// like to the publisher. Records the largest backlog it ever held.
class QueueingStream final : public AgentStream {
 public:
  void Enqueue(quell::v1::ServerMessage message) override {
    std::lock_guard lock(mu);
    queue.push_back(std::move(message));
    peak = std::max(peak, queue.size());
  }
  void Terminate(int, const std::string&) override {}
  AgentBacklog Backlog() override {
    std::lock_guard lock(mu);
    size_t bytes = 0;
    for (const auto& m : queue) bytes += m.ByteSizeLong();
    return {.messages = queue.size(), .bytes = bytes};
  }
  // Hands the oldest queued message to the "agent"; false if there was none.
  bool DeliverOne(AgentLink& link) {
    {
      std::lock_guard lock(mu);
      if (queue.empty()) return false;
      if (queue.front().has_indicator_delta()) delivered.push_back(queue.front().indicator_delta());
      queue.pop_front();
    }
    link.Drained();  // as AgentSession does: outside the stream's own lock
    return true;
  }
  std::mutex mu;
  std::deque<quell::v1::ServerMessage> queue;
  std::vector<quell::v1::IndicatorDelta> delivered;
  size_t peak = 0;
};

// The agent's contract (agent/indicators/indicator_store): chunks take effect with the one
// whose `more` is false; a snapshot replaces everything, a delta must start at the version
// held. Keeps id -> title.
struct AgentModel {
  uint64_t version = 0;
  std::map<std::string, std::string> indicators;
  std::vector<quell::v1::IndicatorDelta> pending;
  int snapshots = 0, deltas = 0;

  void Apply(const quell::v1::IndicatorDelta& d) {
    pending.push_back(d);
    if (d.more()) return;
    if (!d.full()) {
      ASSERT_EQ(d.from_version(), version) << "delta does not follow the version held";
    }
    if (d.full()) indicators.clear();
    for (const auto& chunk : pending) {
      ASSERT_EQ(chunk.from_version(), d.from_version());
      ASSERT_EQ(chunk.to_version(), d.to_version());
      for (const auto& i : chunk.upserts()) indicators[i.id()] = i.title();
      for (const auto& id : chunk.removed_ids()) indicators.erase(id);
    }
    (d.full() ? snapshots : deltas)++;
    version = d.to_version();
    pending.clear();
  }
};

Indicator Make(const std::string& id, std::vector<std::string> groups = {},
               std::optional<UnixMillis> expires = std::nullopt) {
  return {.id = id, .type = IndicatorType::kFileSha256, .value = "v-" + id,
          .action = IndicatorAction::kBlock, .title = "t " + id, .expiration_time = expires,
          .rbac_group_names = std::move(groups), .created_by = "alice", .last_updated_by = "alice",
          .creation_time = kT0, .last_update_time = kT0};
}

std::vector<std::string> Upserts(const quell::v1::IndicatorDelta& d) {
  std::vector<std::string> ids;
  for (const auto& i : d.upserts()) ids.push_back(i.id());
  return ids;
}
std::vector<std::string> Removed(const quell::v1::IndicatorDelta& d) {
  return {d.removed_ids().begin(), d.removed_ids().end()};
}
using V = std::vector<std::string>;

class IndicatorPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_.path() + "/quell.db");
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    for (const char* id : {"dev-a", "dev-b"}) {
      ASSERT_TRUE(store_->CreateDevice({.id = id, .rbac_group_name = "servers"}).ok());
    }
    publisher_ = std::make_unique<IndicatorPublisher>(*store_, clock_,
                                                      IndicatorPublisherOptions{.chunk_size = 3});
  }

  std::shared_ptr<AgentLink> Connect(const std::string& device, AgentStream* stream,
                                     uint64_t version) {
    auto link = std::make_shared<AgentLink>(device, stream);
    publisher_->Connected(link, version);
    return link;
  }
  void Put(std::vector<Indicator> indicators) {
    ASSERT_TRUE(store_->PutIndicators(indicators, {.time = kT0, .actor = "alice"}).ok());
    publisher_->Changed();
  }
  void Delete(std::vector<std::string> ids) {
    ASSERT_TRUE(store_->DeleteIndicators(ids, {.time = kT0, .actor = "alice"}).ok());
    publisher_->Changed();
  }
  void Publish() { ASSERT_TRUE(publisher_->PublishPending().ok()); }

  quell::testing::TempDir dir_;
  FakeClock clock_{kT0};
  std::unique_ptr<Store> store_;
  std::unique_ptr<IndicatorPublisher> publisher_;
};

TEST_F(IndicatorPublisherTest, NewAgentGetsAChunkedSnapshotOfWhatAppliesToItsGroup) {
  Put({Make("i1"), Make("i2", {"lab"}), Make("i3", {"servers"}), Make("i4", {}, kT0),
       Make("i5"), Make("i6")});
  RecordingStream stream;
  auto link = Connect("dev-a", &stream, 0);
  Publish();
  auto deltas = stream.Deltas();
  ASSERT_EQ(deltas.size(), 2u);  // 6 changes in chunks of 3
  EXPECT_TRUE(deltas[0].full());
  EXPECT_TRUE(deltas[0].more());
  EXPECT_FALSE(deltas[1].more());
  EXPECT_EQ(deltas[1].to_version(), 6u);
  // i2 is for another group; i4 expired at kT0.
  EXPECT_EQ(Upserts(deltas[0]), (V{"i1", "i3"}));
  EXPECT_EQ(Upserts(deltas[1]), (V{"i5", "i6"}));
  EXPECT_TRUE(deltas[0].removed_ids().empty());
  // Nothing more to do until something changes.
  Publish();
  EXPECT_TRUE(stream.Deltas().empty());
}

TEST_F(IndicatorPublisherTest, ConnectedSessionsGetOnlyTheChanges) {
  Put({Make("i1"), Make("i2")});
  RecordingStream a, b;
  auto la = Connect("dev-a", &a, 0);
  auto lb = Connect("dev-b", &b, 0);
  Publish();
  a.Deltas();
  b.Deltas();
  Delete({"i1"});
  Put({Make("i3"), Make("i4", {"lab"})});
  Publish();
  for (RecordingStream* s : {&a, &b}) {
    auto deltas = s->Deltas();
    ASSERT_EQ(deltas.size(), 1u);
    EXPECT_FALSE(deltas[0].full());
    EXPECT_EQ(deltas[0].from_version(), 2u);
    EXPECT_EQ(deltas[0].to_version(), 5u);
    EXPECT_EQ(Upserts(deltas[0]), (V{"i3"}));
    EXPECT_EQ(Removed(deltas[0]), (V{"i1", "i4"}));  // i4: not for this group
  }
}

TEST_F(IndicatorPublisherTest, ReconnectWithAnAcknowledgedVersionGetsADelta) {
  Put({Make("i1"), Make("i2")});
  {
    RecordingStream s;
    auto link = Connect("dev-a", &s, 0);
    Publish();
    ASSERT_TRUE(publisher_->Acknowledged("dev-a", 2).ok());
  }
  EXPECT_EQ(store_->GetIndicatorAck("dev-a")->value().version, 2);
  Delete({"i2"});
  Put({Make("i3")});
  RecordingStream s;
  auto link = Connect("dev-a", &s, 2);
  Publish();
  auto deltas = s.Deltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_FALSE(deltas[0].full());
  EXPECT_EQ(deltas[0].from_version(), 2u);
  EXPECT_EQ(Upserts(deltas[0]), (V{"i3"}));
  EXPECT_EQ(Removed(deltas[0]), (V{"i2"}));
}

TEST_F(IndicatorPublisherTest, SnapshotWhenADeltaCannotBeExact) {
  Put({Make("i1"), Make("i2", {"lab"})});
  ASSERT_TRUE(store_->RecordIndicatorAck("dev-a", {.version = 1, .group_name = "servers"}).ok());
  auto full_for = [&](uint64_t version) {
    RecordingStream s;
    auto link = Connect("dev-a", &s, version);
    EXPECT_TRUE(publisher_->PublishPending().ok());
    auto deltas = s.Deltas();
    return !deltas.empty() && deltas[0].full();
  };
  EXPECT_FALSE(full_for(1));
  EXPECT_TRUE(full_for(0));
  EXPECT_TRUE(full_for(99));  // newer than the server: a restored database
  ASSERT_TRUE(store_->SetDeviceGroup("dev-a", "lab").ok());
  EXPECT_TRUE(full_for(1));  // acked for another group
}

TEST_F(IndicatorPublisherTest, GroupChangeOfAConnectedDeviceSendsASnapshot) {
  Put({Make("i1", {"servers"}), Make("i2", {"lab"})});
  RecordingStream s;
  auto link = Connect("dev-a", &s, 0);
  Publish();
  EXPECT_EQ(Upserts(s.Deltas().at(0)), (V{"i1"}));
  ASSERT_TRUE(store_->SetDeviceGroup("dev-a", "lab").ok());
  publisher_->Changed();
  Publish();
  auto deltas = s.Deltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_TRUE(deltas[0].full());
  EXPECT_EQ(Upserts(deltas[0]), (V{"i2"}));
}

std::string Id(int n) { return (n < 10 ? "i0" : "i") + std::to_string(n); }

TEST_F(IndicatorPublisherTest, ASlowLinkNeverHoldsMoreThanTheBound) {
  publisher_ = std::make_unique<IndicatorPublisher>(
      *store_, clock_, IndicatorPublisherOptions{.chunk_size = 3, .max_queued_messages = 2});
  std::vector<Indicator> all;
  for (int n = 0; n < 20; ++n) all.push_back(Make(Id(n)));
  Put(all);
  QueueingStream stream;
  auto link = Connect("dev-a", &stream, 0);
  Publish();
  EXPECT_EQ(stream.Backlog().messages, 2u);  // 7 chunks to send, 2 at a time
  AgentModel agent;
  while (stream.DeliverOne(*link)) Publish();  // the agent reads one, the publisher refills
  for (const auto& d : stream.delivered) agent.Apply(d);
  EXPECT_EQ(stream.peak, 2u);
  EXPECT_EQ(stream.delivered.size(), 7u);
  EXPECT_EQ(agent.snapshots, 1);
  EXPECT_EQ(agent.version, 20u);
  EXPECT_EQ(agent.indicators.size(), 20u);
}

TEST_F(IndicatorPublisherTest, TheByteBoundHoldsBackTooAndAnEndedLinkIsDropped) {
  publisher_ = std::make_unique<IndicatorPublisher>(
      *store_, clock_,
      IndicatorPublisherOptions{.chunk_size = 3, .max_queued_messages = 100,
                                .max_queued_bytes = 1});  // i.e. only into an empty queue
  std::vector<Indicator> all;
  for (int n = 0; n < 9; ++n) all.push_back(Make(Id(n)));
  Put(all);
  QueueingStream stream;
  auto link = Connect("dev-a", &stream, 0);
  Publish();
  EXPECT_EQ(stream.Backlog().messages, 1u);
  ASSERT_TRUE(stream.DeliverOne(*link));
  Publish();
  EXPECT_EQ(stream.peak, 1u);
  link->Detach();  // the stream ended mid-snapshot
  Publish();
  EXPECT_FALSE(publisher_->Tracks("dev-a"));
  EXPECT_EQ(stream.queue.size(), 1u);  // nothing more was pushed at it
}

// Indicators changed while a snapshot is paged out: one already sent, one not yet sent (it
// moves past the snapshot's version V0), one deleted before it was sent, one new. After the
// snapshot the agent gets the delta V0 -> current and ends with exactly the server's set.
TEST_F(IndicatorPublisherTest, IndicatorsChangedMidSnapshotArrive) {
  publisher_ = std::make_unique<IndicatorPublisher>(
      *store_, clock_, IndicatorPublisherOptions{.chunk_size = 3, .max_queued_messages = 1});
  std::vector<Indicator> all;
  for (int n = 0; n < 10; ++n) all.push_back(Make(Id(n)));
  Put(all);
  QueueingStream stream;
  auto link = Connect("dev-a", &stream, 0);
  Publish();
  ASSERT_EQ(stream.queue.size(), 1u);  // i00..i02 so far
  Indicator sent = Make("i01"), unsent = Make("i05");
  sent.title = "changed after it was sent";
  unsent.title = "changed before it was sent";
  Put({sent, unsent, Make("i10")});
  Delete({"i07"});
  AgentModel agent;
  while (stream.DeliverOne(*link)) Publish();
  for (const auto& d : stream.delivered) agent.Apply(d);
  EXPECT_EQ(stream.peak, 1u);
  EXPECT_EQ(stream.delivered.front().to_version(), 10u);  // the snapshot is of V0
  EXPECT_EQ(agent.snapshots, 1);
  EXPECT_EQ(agent.deltas, 1);
  EXPECT_EQ(agent.version, 14u);
  std::map<std::string, std::string> expected;
  auto listed = store_->ListIndicators({});
  ASSERT_TRUE(listed.ok());
  for (const Indicator& i : *listed) expected[i.id] = i.title;
  EXPECT_EQ(agent.indicators, expected);
  EXPECT_EQ(agent.indicators["i01"], "changed after it was sent");
  EXPECT_EQ(agent.indicators["i05"], "changed before it was sent");
  EXPECT_FALSE(agent.indicators.contains("i07"));
}

// The worker is woken by the link draining, not only by changes.
TEST_F(IndicatorPublisherTest, WorkerResumesATransferWhenTheLinkDrains) {
  publisher_ = std::make_unique<IndicatorPublisher>(
      *store_, clock_,
      IndicatorPublisherOptions{.chunk_size = 2, .batch_delay_ms = 1, .max_queued_messages = 1});
  std::vector<Indicator> all;
  for (int n = 0; n < 40; ++n) all.push_back(Make(Id(n)));
  Put(all);
  publisher_->Start();
  QueueingStream stream;
  auto link = Connect("dev-a", &stream, 0);
  AgentModel agent;
  for (int i = 0; i < 2000 && agent.version < 40; ++i) {
    if (!stream.DeliverOne(*link)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    std::lock_guard lock(stream.mu);
    agent.Apply(stream.delivered.back());
  }
  publisher_->Stop();
  EXPECT_EQ(agent.version, 40u);
  EXPECT_EQ(agent.indicators.size(), 40u);
  EXPECT_EQ(stream.peak, 1u);
}

TEST_F(IndicatorPublisherTest, WorkerPublishesWithoutBeingAsked) {
  publisher_ = std::make_unique<IndicatorPublisher>(
      *store_, clock_, IndicatorPublisherOptions{.batch_delay_ms = 1});
  publisher_->Start();
  RecordingStream s;
  auto link = Connect("dev-a", &s, 0);
  Put({Make("i1")});
  uint64_t newest = 0;
  for (int i = 0; i < 500 && newest < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::lock_guard lock(s.mu);
    for (const auto& m : s.messages) {
      if (m.has_indicator_delta()) newest = std::max(newest, m.indicator_delta().to_version());
    }
  }
  publisher_->Stop();
  EXPECT_EQ(newest, 1u);
}

}  // namespace
}  // namespace quell::server
