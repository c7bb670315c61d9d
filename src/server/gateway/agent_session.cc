#include "server/gateway/agent_session.h"

#include "common/logging.h"
#include "server/actions/action_lifecycle.h"
#include "server/gateway/device_identity.h"
#include "server/gateway/file_sightings.h"

namespace quell::server {
namespace {

std::optional<ActionEvent> EventFor(quell::v1::ActionState state) {
  switch (state) {
    case quell::v1::ACTION_STATE_IN_PROGRESS: return ActionEvent::kAgentStarted;
    case quell::v1::ACTION_STATE_SUCCEEDED: return ActionEvent::kAgentSucceeded;
    case quell::v1::ACTION_STATE_FAILED: return ActionEvent::kAgentFailed;
    case quell::v1::ACTION_STATE_CANCELLED: return ActionEvent::kAgentCancelled;
    default: return std::nullopt;
  }
}

}  // namespace

AgentSession::AgentSession(AgentGateway& gateway, grpc::CallbackServerContext* context)
    : gateway_(gateway) {
  Result<std::string> device = AuthenticateDevice(*context, gateway_.store());
  if (!device.ok()) {
    Logger("server.gateway")
        ->warn("refused a Connect from {}: {}", context->peer(), device.status().message());
    FinishOnce(ToGrpcStatus(device.status()));
    return;
  }
  device_id_ = *device;
  link_ = std::make_shared<AgentLink>(device_id_, this);
  StartRead(&incoming_);
}

void AgentSession::OnReadDone(bool ok) {
  if (!ok) {  // the agent closed its side or the connection broke
    FinishOnce(grpc::Status::OK);
    return;
  }
  Status handled = Handle(incoming_);
  if (!handled.ok()) {
    Logger("server.gateway")
        ->warn("device={} stream ended: {}", device_id_, handled.ToString());
    FinishOnce(ToGrpcStatus(handled));
    return;
  }
  StartRead(&incoming_);
}

Status AgentSession::Handle(const quell::v1::AgentMessage& message) {
  if (message.protocol_version() != quell::v1::PROTOCOL_VERSION_1) {
    return FailedPrecondition("unsupported protocol version " +
                              std::to_string(message.protocol_version()) +
                              "; this server speaks 1");
  }
  if (!hello_seen_ && !message.has_hello()) {
    return FailedPrecondition("the first message on a stream must be Hello");
  }
  switch (message.body_case()) {
    case quell::v1::AgentMessage::kHello: return HandleHello(message.hello());
    case quell::v1::AgentMessage::kHeartbeat:
      gateway_.presence().Record(device_id_, gateway_.clock().Now());  // flushed in batches
      return Status::Ok();
    case quell::v1::AgentMessage::kActionUpdate: return HandleUpdate(message.action_update());
    case quell::v1::AgentMessage::kNotice: return HandleNotice(message.notice());
    case quell::v1::AgentMessage::kDetection: return HandleDetection(message.detection());
    case quell::v1::AgentMessage::kIndicatorAck: return HandleIndicatorAck(message.indicator_ack());
    case quell::v1::AgentMessage::kFileSightings:
      return HandleFileSightings(message.file_sightings());
    case quell::v1::AgentMessage::kLiveOutput:
      // Best effort, like the output itself: no sink (or no session) drops it.
      if (LiveOutputSink* sink = gateway_.live_output_sink()) {
        sink->OnLiveOutput(device_id_, message.live_output());
      }
      return Status::Ok();
    default: return InvalidArgument("empty message");
  }
}

Status AgentSession::HandleHello(const quell::v1::Hello& hello) {
  // Only what the agent reports is written: copying the server's fields (group, isolation)
  // from a row read here would undo a change made between that read and this write.
  Device seen = InventoryToDevice(hello.inventory());
  seen.id = device_id_;
  seen.last_seen = gateway_.clock().Now();
  QUELL_RETURN_IF_ERROR(gateway_.store().UpdateDeviceInventory(seen));
  hello_seen_ = true;

  if (auto previous = gateway_.sessions().Register(link_); previous && previous != link_) {
    previous->Terminate(grpc::StatusCode::ABORTED, "replaced by a newer connection");
  }
  Logger("server.gateway")
      ->info("device={} connected ({}, agent {})", device_id_, seen.computer_dns_name,
             seen.agent_version);

  quell::v1::ServerMessage welcome;
  welcome.mutable_welcome()->set_device_id(device_id_);
  welcome.mutable_welcome()->set_heartbeat_interval_seconds(
      gateway_.options().heartbeat_interval_seconds);
  Send(std::move(welcome));
  // Everything still open is (re)delivered; the agent's journal makes this idempotent. A
  // cancellation asked for while the device was away follows its action: otherwise an action
  // the agent runs again after a crash (a live response session) would never learn of it.
  QUELL_ASSIGN_OR_RETURN(std::vector<MachineAction> open,
                         gateway_.actions().OpenActionsFor(device_id_));
  for (const MachineAction& action : open) {
    Send(ToActionRequestMessage(action));
    if (!action.cancellation_requestor.empty()) Send(ToCancelActionMessage(action));
  }
  // The indicator catch-up is computed on the publisher's thread, never on gRPC's.
  if (IndicatorPublisher* indicators = gateway_.options().indicators) {
    indicators->Connected(link_, hello.indicator_version());
  }
  return Status::Ok();
}

Status AgentSession::HandleIndicatorAck(const quell::v1::IndicatorAck& ack) {
  IndicatorPublisher* indicators = gateway_.options().indicators;
  if (indicators == nullptr) return Status::Ok();
  // Only informational (the Machine resource's indicatorVersion, and whether the next Hello
  // may get a delta): a store error is logged, never a reason to end the stream.
  if (Status s = indicators->Acknowledged(device_id_, ack.version()); !s.ok()) {
    Logger("server.gateway")
        ->error("device={} cannot record indicator ack {}: {}", device_id_, ack.version(),
                s.ToString());
  }
  return Status::Ok();
}

Status AgentSession::HandleUpdate(const quell::v1::ActionUpdate& update) {
  std::optional<ActionEvent> event = EventFor(update.state());
  if (!event) return InvalidArgument("action update without a state");
  Status applied = gateway_.actions().ApplyAgentReport(
      device_id_, {.action_id = update.action_id(),
                   .event = *event,
                   .message = update.message(),
                   .progress_percent = update.progress_percent(),
                   .result_json = update.result_json()});
  // Unknown or foreign actions are acknowledged too: resending them can never succeed.
  if (applied.ok() || applied.code() == StatusCode::kNotFound ||
      applied.code() == StatusCode::kPermissionDenied) {
    if (!applied.ok()) {
      Logger("server.gateway")
          ->warn("device={} action={} update dropped: {}", device_id_, update.action_id(),
                 applied.message());
    }
    Ack(update.sequence());
    return Status::Ok();
  }
  // Store trouble: do not ack; the agent re-sends after reconnecting.
  return applied;
}

Status AgentSession::HandleNotice(const quell::v1::Notice& notice) {
  QUELL_RETURN_IF_ERROR(gateway_.store().AppendAudit(
      {.time = gateway_.clock().Now(),
       .actor = "agent:" + device_id_,
       .operation = "device.notice",
       .target = device_id_,
       .comment = notice.message(),
       .details_json = nlohmann::json{{"kind", notice.kind()},
                                      {"agentTime", FormatIso8601(notice.time_unix_ms())}}
                           .dump()}));
  Logger("server.gateway")
      ->warn("device={} notice {}: {}", device_id_, notice.kind(), notice.message());
  Ack(notice.sequence());
  return Status::Ok();
}

Status AgentSession::HandleDetection(const quell::v1::Detection& detection) {
  AlertService* alerts = gateway_.options().alerts;
  if (alerts == nullptr) {
    // Not acknowledged: the agent keeps it and resends it to a server that takes alerts.
    Logger("server.gateway")
        ->warn("device={} detection {} ignored: alerts are not enabled", device_id_,
               detection.detection_id());
    return Status::Ok();
  }
  Result<AlertService::Ingested> ingested = alerts->Ingest(device_id_, detection);
  if (!ingested.ok() && ingested.status().code() != StatusCode::kInvalidArgument) {
    return ingested.status();  // store trouble: not acked; resent after the reconnect
  }
  if (!ingested.ok()) {
    // Resending a malformed detection can never succeed: acknowledge and drop it.
    Logger("server.gateway")
        ->warn("device={} detection dropped: {}", device_id_, ingested.status().message());
  }
  // Where the detected file lives, for fleet-wide actions on its hash (best effort).
  std::vector<FileSighting> seen =
      SightingsFromDetection(device_id_, detection, gateway_.clock().Now());
  if (!seen.empty()) {
    if (Status s = gateway_.store().RecordFileSightings(seen); !s.ok()) {
      Logger("server.gateway")
          ->error("device={} cannot record file sightings: {}", device_id_, s.ToString());
    }
  }
  // Stored now, or stored before (a resend after a lost ack): either way it is safe.
  Ack(detection.sequence());
  return Status::Ok();
}

Status AgentSession::HandleFileSightings(const quell::v1::FileSightings& sightings) {
  ParsedSightings parsed = ParseFileSightings(device_id_, sightings, gateway_.clock().Now());
  if (parsed.dropped > 0) {
    Logger("server.gateway")
        ->warn("device={} {} malformed or excess file sighting(s) dropped", device_id_,
               parsed.dropped);
  }
  if (parsed.valid.empty()) return Status::Ok();
  // Best effort by contract (the agent repeats sightings later): a store error is logged,
  // never a reason to drop the agent's stream.
  if (Status s = gateway_.store().RecordFileSightings(parsed.valid); !s.ok()) {
    Logger("server.gateway")
        ->error("device={} cannot record file sightings: {}", device_id_, s.ToString());
  }
  return Status::Ok();
}

void AgentSession::Ack(uint64_t sequence) {
  if (sequence == 0) return;
  quell::v1::ServerMessage ack;
  ack.mutable_update_ack()->set_sequence(sequence);
  Send(std::move(ack));
}

void AgentSession::Send(quell::v1::ServerMessage message) { link_->Send(std::move(message)); }

void AgentSession::Enqueue(quell::v1::ServerMessage message) {
  const quell::v1::ServerMessage* to_write = nullptr;
  {
    std::lock_guard lock(write_mu_);
    if (finished_) return;
    const size_t bytes = message.ByteSizeLong();
    outgoing_.push_back({std::move(message), bytes});
    outgoing_bytes_ += bytes;
    if (write_in_flight_) return;
    write_in_flight_ = true;
    to_write = &outgoing_.front().message;  // deque: stays valid while others are pushed
  }
  StartWrite(to_write);
}

AgentBacklog AgentSession::Backlog() {
  std::lock_guard lock(write_mu_);
  return {.messages = outgoing_.size(), .bytes = outgoing_bytes_};
}

void AgentSession::OnWriteDone(bool ok) {
  const quell::v1::ServerMessage* to_write = nullptr;
  {
    std::lock_guard lock(write_mu_);
    if (!outgoing_.empty()) {
      outgoing_bytes_ -= outgoing_.front().bytes;
      outgoing_.pop_front();
    }
    if (!ok || finished_ || outgoing_.empty()) {
      write_in_flight_ = false;
    } else {
      to_write = &outgoing_.front().message;
    }
  }
  link_->Drained();  // a bulk sender may queue its next message now
  if (to_write != nullptr) StartWrite(to_write);
}

void AgentSession::Terminate(int grpc_code, const std::string& reason) {
  FinishOnce(grpc::Status(static_cast<grpc::StatusCode>(grpc_code), reason));
}

void AgentSession::FinishOnce(grpc::Status status) {
  {
    std::lock_guard lock(write_mu_);
    if (finished_) return;
    finished_ = true;
  }
  Finish(std::move(status));
}

void AgentSession::OnCancel() {
  Logger("server.gateway")->debug("device={} stream cancelled", device_id_);
}

void AgentSession::OnDone() {
  if (link_) {
    link_->Detach();
    gateway_.sessions().Unregister(link_);
    Logger("server.gateway")->info("device={} disconnected", device_id_);
  }
  delete this;
}

}  // namespace quell::server
