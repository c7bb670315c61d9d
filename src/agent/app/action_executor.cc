#include "agent/app/action_executor.h"

#include <exception>

#include "common/logging.h"

namespace quell::agent {

namespace {
auto Log() { return Logger("agent.actions"); }
}  // namespace

ActionExecutor::ActionExecutor(const ActionRegistry& registry, ActionJournal& journal,
                               MessageSink& sink, const Clock& clock)
    : registry_(registry), journal_(journal), sink_(sink), clock_(clock) {}

ActionExecutor::~ActionExecutor() {
  std::map<std::string, std::unique_ptr<Run>> runs;
  {
    std::lock_guard lock(mu_);
    runs.swap(runs_);
  }
  for (auto& [id, run] : runs) run->thread.request_stop();
  runs.clear();  // joins
}

std::vector<std::unique_ptr<ActionExecutor::Run>> ActionExecutor::TakeDoneLocked() {
  std::vector<std::unique_ptr<Run>> done;
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (it->second->done) {
      done.push_back(std::move(it->second));
      it = runs_.erase(it);
    } else {
      ++it;
    }
  }
  return done;
}

void ActionExecutor::Submit(const quell::v1::ActionRequest& request) {
  const std::string& id = request.action_id();
  std::vector<std::unique_ptr<Run>> reaped;
  std::unique_lock lock(mu_);
  reaped = TakeDoneLocked();
  if (runs_.contains(id)) {
    Log()->debug("action={} already running; redelivery ignored", id);
    return;
  }

  auto record = journal_.Lookup(id);
  if (!record.ok() && record.status().code() == StatusCode::kInvalidArgument) {
    Log()->warn("action={} refused: {}", id, record.status().message());
    Finish(request, quell::v1::ACTION_STATE_FAILED, "malformed action id", "");
    return;
  }
  if (!record.ok()) {
    Log()->error("action={} journal unreadable ({}); treating it as new", id,
                 record.status().ToString());
  } else if (record->state == ActionJournal::State::kFinished) {
    Log()->info("action={} already finished; sending its result again", id);
    quell::v1::AgentMessage message;
    *message.mutable_action_update() = *record->final_update;
    if (Status s = sink_.SendDurable(std::move(message)); !s.ok()) {
      Log()->error("action={} cannot spool result: {}", id, s.ToString());
    }
    return;
  } else if (record->state == ActionJournal::State::kStarted) {
    Log()->warn("action={} was interrupted before it finished; running it again", id);
  }

  if (request.deadline_unix_ms() > 0 && clock_.Now() > request.deadline_unix_ms()) {
    Finish(request, quell::v1::ACTION_STATE_FAILED, "expired: the deadline passed before it started",
           "");
    return;
  }
  auto target = registry_.Find(request.type());
  if (!target.ok()) {
    Finish(request, quell::v1::ACTION_STATE_FAILED, target.status().message(), "");
    return;
  }
  nlohmann::json parameters = nlohmann::json::object();
  if (!request.parameters_json().empty()) {
    parameters = nlohmann::json::parse(request.parameters_json(), nullptr, false);
  }
  if (!parameters.is_object()) {
    Finish(request, quell::v1::ACTION_STATE_FAILED, "parameters are not a JSON object", "");
    return;
  }
  if (Status s = target->action->Validate(parameters); !s.ok()) {
    Finish(request, quell::v1::ACTION_STATE_FAILED, "invalid parameters: " + s.message(), "");
    return;
  }

  auto run = std::make_unique<Run>();
  Run* raw = run.get();
  runs_.emplace(id, std::move(run));
  // The thread cannot mark itself done before this function releases mu_.
  raw->thread = std::jthread([this, request, t = *target, p = std::move(parameters)](
                                 std::stop_token stop) mutable {
    Execute(request, t, std::move(p), stop);
  });
}

void ActionExecutor::Execute(const quell::v1::ActionRequest& request,
                             const ActionRegistry::Target& target, nlohmann::json parameters,
                             std::stop_token stop) {
  const std::string& id = request.action_id();
  if (Status s = journal_.MarkStarted(id, request.type()); !s.ok()) {
    Log()->error("action={} cannot journal its start: {}", id, s.ToString());
  }
  Log()->info("action={} type={} started", id, request.type());
  SendProgress(id, 0, "started");

  ActionContext ctx;
  ctx.action_id = id;
  ctx.parameters = std::move(parameters);
  ctx.report_progress = [this, id](uint32_t percent, const std::string& message) {
    SendProgress(id, percent, message);
  };
  ctx.stop = stop;

  Result<nlohmann::json> result = Internal("not run");
  try {
    result = target.undo ? target.action->Undo(ctx) : target.action->Run(ctx);
  } catch (const std::exception& e) {  // an action bug must not take the agent down
    result = Internal(std::string("action threw: ") + e.what());
  }

  bool cancelled = false;
  {
    std::lock_guard lock(mu_);
    auto it = runs_.find(id);
    cancelled = it != runs_.end() && it->second->cancelled;
  }
  const std::string failure_result =
      ctx.failure_result.is_null()
          ? ""
          : ctx.failure_result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (result.ok()) {
    Finish(request, quell::v1::ACTION_STATE_SUCCEEDED, "",
           result->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (cancelled) {
    Finish(request, quell::v1::ACTION_STATE_CANCELLED, result.status().message(), failure_result);
  } else if (stop.stop_requested()) {
    // The agent is shutting down, nobody cancelled it: no result, so it runs again when the
    // server redelivers it.
    Log()->info("action={} interrupted by shutdown; it will run again", id);
  } else {
    Finish(request, quell::v1::ACTION_STATE_FAILED, result.status().message(), failure_result);
  }

  std::lock_guard lock(mu_);
  if (auto it = runs_.find(id); it != runs_.end()) it->second->done = true;
  idle_cv_.notify_all();
}

void ActionExecutor::Finish(const quell::v1::ActionRequest& request, quell::v1::ActionState state,
                            const std::string& message, const std::string& result_json) {
  const std::string& id = request.action_id();
  quell::v1::AgentMessage out;
  auto* update = out.mutable_action_update();
  update->set_action_id(id);
  update->set_state(state);
  update->set_message(message);
  update->set_progress_percent(100);
  update->set_result_json(result_json);
  update->set_time_unix_ms(clock_.Now());
  Log()->info("action={} type={} finished: {} {}", id, request.type(),
              quell::v1::ActionState_Name(state), message);
  // Journal first: if the agent dies before the spool write, a redelivery finds the result
  // in the journal and sends it, rather than running the action again.
  if (IsSafeActionId(id)) {
    if (Status s = journal_.MarkFinished(id, request.type(), *update); !s.ok()) {
      Log()->error("action={} cannot journal its result: {}", id, s.ToString());
    }
  }
  if (Status s = sink_.SendDurable(out); !s.ok()) {
    Log()->error("action={} cannot spool its result ({}); sending it without a safety net", id,
                 s.ToString());
    sink_.Send(std::move(out));
  }
}

void ActionExecutor::SendProgress(const std::string& action_id, uint32_t percent,
                                  const std::string& message) {
  quell::v1::AgentMessage out;
  auto* update = out.mutable_action_update();
  update->set_action_id(action_id);
  update->set_state(quell::v1::ACTION_STATE_IN_PROGRESS);
  update->set_progress_percent(std::min<uint32_t>(percent, 99));
  update->set_message(message);
  update->set_time_unix_ms(clock_.Now());
  sink_.Send(std::move(out));
}

void ActionExecutor::Cancel(const std::string& action_id) {
  std::lock_guard lock(mu_);
  auto it = runs_.find(action_id);
  if (it == runs_.end() || it->second->done) {
    Log()->info("action={} cancel ignored: not running", action_id);
    return;
  }
  Log()->info("action={} cancel requested", action_id);
  it->second->cancelled = true;
  it->second->thread.request_stop();
}

std::vector<std::string> ActionExecutor::RunningIds() {
  std::vector<std::unique_ptr<Run>> reaped;
  std::lock_guard lock(mu_);
  reaped = TakeDoneLocked();
  std::vector<std::string> ids;
  for (const auto& [id, run] : runs_) ids.push_back(id);
  return ids;
}

void ActionExecutor::WaitIdle() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [this] {
    for (const auto& [id, run] : runs_) {
      if (!run->done) return false;
    }
    return true;
  });
}

}  // namespace quell::agent
