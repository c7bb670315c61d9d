// DiagnosticNoop's EmitTestDetection, seen from the detection sink it reports to.
#include <gtest/gtest.h>

#include <vector>

#include "agent/actions/diagnostic_noop.h"

namespace quell::agent {
namespace {

class RecordingDetections final : public DetectionSink {
 public:
  void Report(Detection d) override { got.push_back(std::move(d)); }
  std::vector<Detection> got;
};

TEST(DiagnosticNoopDetectionTest, EmitsOneInformationalDeviceDetectionOnlyWhenAsked) {
  RecordingDetections sink;
  DiagnosticNoopAction action(&sink);
  ActionContext plain{.action_id = "a1"};
  ASSERT_TRUE(action.Run(plain).ok());
  EXPECT_TRUE(sink.got.empty());

  ActionContext emit{.action_id = "a2", .parameters = {{"EmitTestDetection", true}}};
  ASSERT_TRUE(action.Validate(emit.parameters).ok());
  auto result = action.Run(emit);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ((*result)["testDetection"], true);
  ASSERT_EQ(sink.got.size(), 1u);
  const Detection& d = sink.got[0];
  EXPECT_EQ(d.detector_id, "quell.diagnostic");
  EXPECT_EQ(d.severity, "Informational");
  EXPECT_EQ(d.action_id, "a2");
  EXPECT_FALSE(d.dedup_key.empty());
  ASSERT_EQ(d.evidence.size(), 1u);
  EXPECT_EQ(d.evidence[0]["@odata.type"], "#microsoft.graph.security.deviceEvidence");
}

TEST(DiagnosticNoopDetectionTest, ValidatesTheOptionalParameter) {
  DiagnosticNoopAction action(nullptr);
  EXPECT_TRUE(action.Validate(nlohmann::json::object()).ok());
  EXPECT_TRUE(action.Validate({{"EmitTestDetection", false}}).ok());
  EXPECT_FALSE(action.Validate({{"EmitTestDetection", "yes"}}).ok());
  EXPECT_FALSE(action.Validate({{"Other", 1}}).ok());
  // Asked to emit without a sink: the action fails rather than pretending.
  ActionContext emit{.action_id = "a", .parameters = {{"EmitTestDetection", true}}};
  EXPECT_FALSE(action.Run(emit).ok());
}

}  // namespace
}  // namespace quell::agent
