#include "bench/loadgen/sim_agent.h"

#include <algorithm>

namespace quell::bench {
namespace {

constexpr char kNoopType[] = "DiagnosticNoop";

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

quell::v1::AgentMessage NewMessage() {
  quell::v1::AgentMessage message;
  message.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
  return message;
}

}  // namespace

SimAgent::SimAgent(size_t index, const agent::ServerEndpoint& endpoint,
                   const agent::Identity& identity, quell::v1::Inventory inventory,
                   SimAgentObserver& observer)
    : index_(index),
      inventory_(std::move(inventory)),
      observer_(observer),
      channel_(agent::MakeServerChannel(endpoint, &identity)),
      stub_(quell::v1::AgentGateway::NewStub(channel_)) {}

void SimAgent::Start() {
  stub_->async()->Connect(&context_, this);
  AddHold();
  quell::v1::AgentMessage hello = NewMessage();
  *hello.mutable_hello()->mutable_inventory() = inventory_;
  Enqueue(std::move(hello));
  StartRead(&incoming_);
  StartCall();
}

void SimAgent::SendHeartbeat() {
  {
    std::lock_guard lock(mu_);
    if (!welcomed_ || closing_) return;
  }
  quell::v1::AgentMessage heartbeat = NewMessage();
  heartbeat.mutable_heartbeat()->set_sent_unix_ms(NowUnixMs());
  Enqueue(std::move(heartbeat));
}

void SimAgent::Stop() { context_.TryCancel(); }

void SimAgent::Enqueue(quell::v1::AgentMessage message) {
  // StartWrite under mu_: the write's completion runs on a gRPC thread, never inline, and
  // holding mu_ orders it against closing_ (see the hold in Start()).
  std::lock_guard lock(mu_);
  if (closing_) return;
  outgoing_.push_back(std::move(message));
  if (writing_) return;
  writing_ = true;
  StartWrite(&outgoing_.front());
}

void SimAgent::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  outgoing_.pop_front();
  if (!ok || closing_ || outgoing_.empty()) {
    writing_ = false;
    if (!ok) outgoing_.clear();
    return;
  }
  StartWrite(&outgoing_.front());
}

void SimAgent::OnReadDone(bool ok) {
  if (!ok) {
    bool release = false;
    {
      std::lock_guard lock(mu_);
      closing_ = true;
      release = !hold_released_;
      hold_released_ = true;
    }
    if (release) RemoveHold();
    return;
  }
  switch (incoming_.body_case()) {
    case quell::v1::ServerMessage::kWelcome: {
      {
        std::lock_guard lock(mu_);
        welcomed_ = true;
      }
      observer_.OnWelcome(index_, incoming_.welcome().heartbeat_interval_seconds());
      break;
    }
    case quell::v1::ServerMessage::kActionRequest:
      HandleActionRequest(incoming_.action_request());
      break;
    case quell::v1::ServerMessage::kUpdateAck: HandleAck(incoming_.update_ack().sequence()); break;
    default: break;  // CancelAction: a no-op has nothing to cancel
  }
  StartRead(&incoming_);
}

void SimAgent::HandleActionRequest(const quell::v1::ActionRequest& request) {
  quell::v1::AgentMessage update = NewMessage();
  auto* body = update.mutable_action_update();
  body->set_action_id(request.action_id());
  body->set_time_unix_ms(NowUnixMs());
  if (request.type() == kNoopType) {
    body->set_state(quell::v1::ACTION_STATE_SUCCEEDED);
    body->set_progress_percent(100);
    body->set_result_json("{}");
  } else {
    body->set_state(quell::v1::ACTION_STATE_FAILED);
    body->set_message("the load generator only runs DiagnosticNoop");
  }
  {
    std::lock_guard lock(mu_);
    body->set_sequence(++next_sequence_);
    if (request.type() == kNoopType) unacked_.emplace_back(next_sequence_, request.action_id());
  }
  Enqueue(std::move(update));
}

void SimAgent::HandleAck(uint64_t sequence) {
  SteadyTime at = std::chrono::steady_clock::now();
  std::string action_id;
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(unacked_.begin(), unacked_.end(),
                           [&](const auto& entry) { return entry.first == sequence; });
    if (it == unacked_.end()) return;
    action_id = std::move(it->second);
    unacked_.erase(it);
  }
  observer_.OnSucceededAcked(index_, action_id, at);
}

void SimAgent::OnDone(const grpc::Status& status) {
  bool welcomed = false;
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    welcomed = welcomed_;
  }
  // The object stays alive (the fleet owns it); only the stream is over.
  observer_.OnEnded(index_, status, welcomed);
}

}  // namespace quell::bench
