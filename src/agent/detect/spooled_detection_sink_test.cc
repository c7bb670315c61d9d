#include "agent/detect/spooled_detection_sink.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

class RecordingSink final : public MessageSink {
 public:
  void Send(quell::v1::AgentMessage message) override { sent.push_back(std::move(message)); }
  Status SendDurable(quell::v1::AgentMessage message) override {
    sent.push_back(std::move(message));
    return Status::Ok();
  }
  std::vector<quell::v1::AgentMessage> sent;
};

Detection Sample() {
  Detection d;
  d.detector_id = "quell.av.clamav";
  d.title = "Eicar-Signature in /tmp/eicar.com";
  d.severity = "High";
  d.category = "Malware";
  d.detection_source = "Antivirus";
  d.threat_name = "Eicar-Signature";
  d.mitre_techniques = {"T1204.002"};
  d.evidence = nlohmann::json::array(
      {{{"@odata.type", "#microsoft.graph.security.fileEvidence"},
        {"fileDetails", {{"fileName", "eicar.com"}, {"filePath", "/tmp"}}}}});
  d.dedup_key = "quell.av.clamav|Eicar-Signature|abc";
  d.action_id = "action-1";
  return d;
}

TEST(DetectionToMessageTest, CarriesEveryFieldAndDefaultsTheTime) {
  quell::v1::AgentMessage m = DetectionToMessage(Sample(), "det-1", 1234);
  ASSERT_TRUE(m.has_detection());
  const auto& d = m.detection();
  EXPECT_EQ(d.detection_id(), "det-1");
  EXPECT_EQ(d.detector_id(), "quell.av.clamav");
  EXPECT_EQ(d.severity(), "High");
  EXPECT_EQ(d.category(), "Malware");
  EXPECT_EQ(d.detection_source(), "Antivirus");
  EXPECT_EQ(d.threat_name(), "Eicar-Signature");
  ASSERT_EQ(d.mitre_techniques_size(), 1);
  EXPECT_EQ(d.mitre_techniques(0), "T1204.002");
  EXPECT_EQ(d.time_unix_ms(), 1234);
  EXPECT_EQ(nlohmann::json::parse(d.evidence_json())[0]["fileDetails"]["fileName"], "eicar.com");
  EXPECT_EQ(d.dedup_key(), "quell.av.clamav|Eicar-Signature|abc");
  EXPECT_EQ(d.action_id(), "action-1");
  EXPECT_EQ(d.sequence(), 0u);

  Detection timed = Sample();
  timed.time = 99;
  EXPECT_EQ(DetectionToMessage(timed, "det-2", 1234).detection().time_unix_ms(), 99);
}

TEST(SpooledDetectionSinkTest, OfflineDetectionIsSpooledAndSurvivesARestartUntilAcked) {
  quell::testing::TempDir dir;
  FakeClock clock(5000);
  int n = 0;
  {
    auto spool = Spool::Open(dir / "spool");
    ASSERT_TRUE(spool.ok()) << spool.status().ToString();
    SpooledDetectionSink sink(**spool, clock, [&n] { return "det-" + std::to_string(++n); });
    sink.Report(Sample());  // no channel attached: offline
    EXPECT_EQ((*spool)->size(), 1u);
    EXPECT_EQ(sink.reported(), 1u);
  }
  // The agent restarts: the detection is still there, with its id and a sequence to ack.
  auto spool = Spool::Open(dir / "spool");
  ASSERT_TRUE(spool.ok());
  auto pending = (*spool)->Pending();
  ASSERT_EQ(pending.size(), 1u);
  ASSERT_TRUE(pending[0].has_detection());
  EXPECT_EQ(pending[0].detection().detection_id(), "det-1");
  EXPECT_EQ(pending[0].detection().time_unix_ms(), 5000);
  const uint64_t sequence = pending[0].detection().sequence();
  EXPECT_GT(sequence, 0u);
  EXPECT_EQ(SequenceOf(pending[0]), sequence);
  ASSERT_TRUE((*spool)->Ack(sequence).ok());
  EXPECT_EQ((*spool)->size(), 0u);
}

TEST(SpooledDetectionSinkTest, AttachedChannelGetsTheSpooledMessageWithItsSequence) {
  quell::testing::TempDir dir;
  FakeClock clock(1);
  auto spool = Spool::Open(dir / "spool");
  ASSERT_TRUE(spool.ok());
  SpooledDetectionSink sink(**spool, clock);
  RecordingSink live;
  sink.Attach(&live);
  sink.Report(Sample());
  sink.Report(Sample());
  ASSERT_EQ(live.sent.size(), 2u);
  // Each report is a distinct detection (fresh ids), each spooled until acknowledged.
  EXPECT_NE(live.sent[0].detection().detection_id(), live.sent[1].detection().detection_id());
  EXPECT_FALSE(live.sent[0].detection().detection_id().empty());
  EXPECT_LT(live.sent[0].detection().sequence(), live.sent[1].detection().sequence());
  auto pending = (*spool)->Pending();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].detection().detection_id(), live.sent[0].detection().detection_id());
  EXPECT_EQ(pending[0].detection().sequence(), live.sent[0].detection().sequence());

  sink.Attach(nullptr);
  sink.Report(Sample());
  EXPECT_EQ(live.sent.size(), 2u);
  EXPECT_EQ((*spool)->size(), 3u);
}

TEST(SpooledDetectionSinkTest, FullSpoolNeverDropsDetections) {
  quell::testing::TempDir dir;
  FakeClock clock(1);
  auto spool = Spool::Open(dir / "spool", /*max_entries=*/2);
  ASSERT_TRUE(spool.ok());
  SpooledDetectionSink sink(**spool, clock);
  for (int i = 0; i < 4; ++i) sink.Report(Sample());
  EXPECT_EQ((*spool)->size(), 4u);
}

}  // namespace
}  // namespace quell::agent
