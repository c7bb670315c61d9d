// LiveOutput over a real Connect stream reaches the gateway's LiveOutputSink, tagged with the
// device the certificate authenticated (not whatever the message claims).
#include <gtest/gtest.h>

#include "server/gateway/gateway_test_env.h"

namespace quell::server {
namespace {

class RecordingSink final : public LiveOutputSink {
 public:
  void OnLiveOutput(const std::string& device_id, const quell::v1::LiveOutput& output) override {
    std::lock_guard lock(mu_);
    seen_.emplace_back(device_id, output);
  }
  std::vector<std::pair<std::string, quell::v1::LiveOutput>> Seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, quell::v1::LiveOutput>> seen_;
};

using LiveGatewayTest = GatewayTestEnv;

TEST_F(LiveGatewayTest, LiveOutputReachesTheSinkWithTheAuthenticatedDevice) {
  RecordingSink sink;
  gateway_->SetLiveOutputSink(&sink);
  EnrolledAgent agent = Enroll("h1");
  auto stub = quell::v1::AgentGateway::NewStub(Channel(&agent.identity));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto rw = stub->Connect(&context);
  quell::v1::AgentMessage hello;
  hello.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
  hello.mutable_hello()->mutable_inventory()->set_hostname("h1");
  ASSERT_TRUE(rw->Write(hello));
  quell::v1::ServerMessage welcome;
  ASSERT_TRUE(rw->Read(&welcome));
  ASSERT_TRUE(welcome.has_welcome());

  quell::v1::AgentMessage output;
  output.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
  output.mutable_live_output()->set_session_id("s1");
  output.mutable_live_output()->set_command_id(3);
  output.mutable_live_output()->set_text("hello\n");
  ASSERT_TRUE(rw->Write(output));
  rw->WritesDone();
  EXPECT_TRUE(rw->Finish().ok());  // the stream stays healthy: live output is not an error
  auto seen = sink.Seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, agent.device_id);
  EXPECT_EQ(seen[0].second.command_id(), 3u);
  EXPECT_EQ(seen[0].second.text(), "hello\n");
  gateway_->SetLiveOutputSink(nullptr);
}

}  // namespace
}  // namespace quell::server
