#include "agent/channel/server_channel.h"

#include <thread>

#include "common/logging.h"

namespace quell::agent {

namespace {
auto Log() { return Logger("agent.channel"); }
}  // namespace

ServerChannel::ServerChannel(Options options, Spool& spool, Handler& handler)
    : options_(std::move(options)),
      spool_(spool),
      handler_(handler),
      backoff_(options_.reconnect_initial, options_.reconnect_max, options_.random),
      heartbeat_seconds_(static_cast<uint32_t>(options_.heartbeat_interval.count())) {}

void ServerChannel::Run(std::stop_token stop) {
  // Cancels whatever the live session is blocked on, and wakes a backoff sleep.
  std::stop_callback on_stop(stop, [this] {
    {
      std::lock_guard lock(context_mu_);
      if (context_ != nullptr) context_->TryCancel();
    }
    std::lock_guard lock(sleep_mu_);
    sleep_cv_.notify_all();
  });

  const std::string& device = options_.identity.device_id;
  while (!stop.stop_requested()) {
    grpc::Status status = RunSession(stop);
    if (stop.stop_requested()) break;
    std::chrono::milliseconds delay = backoff_.Next();
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      delay = backoff_.max();
      Log()->error("device={} the server refused this device's certificate (revoked or unknown "
                   "device): {}; retrying in {} ms",
                   device, status.error_message(), delay.count());
    } else {
      Log()->warn("device={} stream to {} ended: {} ({}); reconnecting in {} ms", device,
                  options_.endpoint.target, status.error_message(),
                  static_cast<int>(status.error_code()), delay.count());
    }
    SleepFor(stop, delay);
  }
  Log()->info("device={} channel stopped", device);
}

void ServerChannel::SleepFor(std::stop_token stop, std::chrono::milliseconds delay) {
  std::unique_lock lock(sleep_mu_);
  sleep_cv_.wait_for(lock, stop, delay, [] { return false; });
}

grpc::Status ServerChannel::RunSession(std::stop_token stop) {
  auto stub = quell::v1::AgentGateway::NewStub(
      MakeServerChannel(options_.endpoint, &options_.identity));
  grpc::ClientContext context;
  {
    std::lock_guard lock(context_mu_);
    if (stop.stop_requested()) return grpc::Status::CANCELLED;
    context_ = &context;
  }
  std::unique_ptr<Stream> stream = stub->Connect(&context);

  // Built before taking the write lock: the callbacks reach into other components' locks.
  quell::v1::AgentMessage hello;
  hello.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
  if (options_.inventory) *hello.mutable_hello()->mutable_inventory() = options_.inventory();
  if (options_.running_action_ids) {
    for (auto& id : options_.running_action_ids()) hello.mutable_hello()->add_running_action_ids(id);
  }
  if (options_.indicator_version) {
    hello.mutable_hello()->set_indicator_version(options_.indicator_version());
  }
  {
    // Hello, then the spool, under the write lock: a durable message appended meanwhile either
    // is in this snapshot or is written after it by SendDurable; both orders are fine, the
    // server deduplicates by sequence.
    std::lock_guard lock(write_mu_);
    if (stream->Write(hello)) {
      stream_ = stream.get();
      for (auto& message : spool_.Pending()) {
        message.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
        if (!stream->Write(message)) break;
      }
    }
  }

  std::jthread heartbeat([this](std::stop_token s) { HeartbeatLoop(s); });
  quell::v1::ServerMessage message;
  while (stream->Read(&message)) Dispatch(message);

  heartbeat.request_stop();
  {
    std::lock_guard lock(sleep_mu_);
    sleep_cv_.notify_all();
  }
  heartbeat.join();
  connected_ = false;
  {
    std::lock_guard lock(write_mu_);
    stream_ = nullptr;
  }
  grpc::Status status = stream->Finish();
  std::lock_guard lock(context_mu_);
  context_ = nullptr;
  return status;
}

void ServerChannel::Dispatch(const quell::v1::ServerMessage& message) {
  const std::string& device = options_.identity.device_id;
  switch (message.body_case()) {
    case quell::v1::ServerMessage::kWelcome: {
      const auto& welcome = message.welcome();
      if (welcome.device_id() != device) {
        Log()->warn("device={} server welcomed us as device {}", device, welcome.device_id());
      }
      if (welcome.heartbeat_interval_seconds() > 0) {
        std::lock_guard lock(sleep_mu_);
        heartbeat_seconds_ = welcome.heartbeat_interval_seconds();
        sleep_cv_.notify_all();
      }
      backoff_.Reset();
      connected_ = true;
      ++sessions_;
      Log()->info("device={} connected to {} (heartbeat every {} s, {} spooled message(s))",
                  device, options_.endpoint.target, heartbeat_seconds_.load(), spool_.size());
      break;
    }
    case quell::v1::ServerMessage::kActionRequest:
      handler_.OnActionRequest(message.action_request());
      break;
    case quell::v1::ServerMessage::kCancelAction:
      handler_.OnCancelAction(message.cancel_action());
      break;
    case quell::v1::ServerMessage::kUpdateAck:
      if (Status s = spool_.Ack(message.update_ack().sequence()); !s.ok()) {
        Log()->error("device={} cannot remove acknowledged message {}: {}", device,
                     message.update_ack().sequence(), s.ToString());
      }
      break;
    case quell::v1::ServerMessage::kIndicatorDelta:
      handler_.OnIndicatorDelta(message.indicator_delta());
      break;
    case quell::v1::ServerMessage::kLiveCommand:
      handler_.OnLiveCommand(message.live_command());
      break;
    case quell::v1::ServerMessage::kLiveCancel:
      handler_.OnLiveCancel(message.live_cancel());
      break;
    case quell::v1::ServerMessage::BODY_NOT_SET:
      Log()->warn("device={} ignoring a server message this agent does not understand", device);
      break;
  }
}

void ServerChannel::HeartbeatLoop(std::stop_token stop) {
  // Re-reads the interval on every wake-up: the Welcome usually changes it after this loop
  // has started. Woken through sleep_cv_ (Welcome, end of session); stop is checked under
  // sleep_mu_, so a wake-up is never lost.
  auto last = std::chrono::steady_clock::now();
  std::unique_lock lock(sleep_mu_);
  while (!stop.stop_requested()) {
    const auto due = last + std::chrono::seconds(heartbeat_seconds_.load());
    if (std::chrono::steady_clock::now() < due) {
      sleep_cv_.wait_until(lock, due);
      continue;
    }
    lock.unlock();
    quell::v1::AgentMessage beat;
    beat.mutable_heartbeat()->set_sent_unix_ms(options_.clock->Now());
    Send(std::move(beat));
    last = std::chrono::steady_clock::now();
    lock.lock();
  }
}

void ServerChannel::Send(quell::v1::AgentMessage message) {
  message.set_protocol_version(quell::v1::PROTOCOL_VERSION_1);
  std::lock_guard lock(write_mu_);
  // A failed write means the stream is broken; the reader sees that and reconnects.
  if (stream_ != nullptr) stream_->Write(message);
}

Status ServerChannel::SendDurable(quell::v1::AgentMessage message) {
  QUELL_RETURN_IF_ERROR(spool_.Append(message).status());
  Send(std::move(message));
  return Status::Ok();
}

}  // namespace quell::agent
