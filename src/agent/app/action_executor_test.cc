#include "agent/app/action_executor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <latch>

#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records what the executor sends; durable messages get increasing sequences like the spool.
class FakeSink final : public MessageSink {
 public:
  void Send(quell::v1::AgentMessage message) override { Record(std::move(message), false); }
  Status SendDurable(quell::v1::AgentMessage message) override {
    Record(std::move(message), true);
    return Status::Ok();
  }

  // Waits for the `n`th final (durable) update and returns it.
  quell::v1::ActionUpdate WaitForFinal(size_t n = 1) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return finals_.size() >= n; });
    return finals_.size() >= n ? finals_[n - 1] : quell::v1::ActionUpdate();
  }
  std::vector<quell::v1::ActionUpdate> finals() {
    std::lock_guard lock(mu_);
    return finals_;
  }
  std::vector<quell::v1::ActionUpdate> progress() {
    std::lock_guard lock(mu_);
    return progress_;
  }

 private:
  void Record(quell::v1::AgentMessage message, bool durable) {
    std::lock_guard lock(mu_);
    auto update = message.action_update();
    if (durable) {
      update.set_sequence(++sequence_);
      finals_.push_back(update);
    } else {
      progress_.push_back(update);
    }
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t sequence_ = 0;
  std::vector<quell::v1::ActionUpdate> finals_;
  std::vector<quell::v1::ActionUpdate> progress_;
};

// An action whose runs the test controls: it can block until released or cancelled, fail,
// and counts how often it ran. Undo type "Unhold".
struct HoldControl {
  std::atomic<int> runs{0};
  std::atomic<int> undos{0};
  std::atomic<bool> block{false};
  std::atomic<bool> fail{false};
  std::atomic<bool> release{false};
  std::latch* started = nullptr;
};

class HoldAction final : public Action {
 public:
  explicit HoldAction(HoldControl& control) : control_(control) {}
  const ActionSpec& Spec() const override {
    static const ActionSpec spec{.type = "Hold", .undo_type = "Unhold", .risk = "low"};
    return spec;
  }
  Status Validate(const nlohmann::json& p) const override {
    if (p.contains("bad")) return InvalidArgument("bad is not allowed");
    return Status::Ok();
  }
  Result<nlohmann::json> Run(ActionContext& ctx) override {
    ++control_.runs;
    ctx.report_progress(50, "halfway");
    if (control_.started != nullptr) control_.started->count_down();
    while (control_.block && !control_.release) {
      if (ctx.stop.stop_requested()) return Cancelled("stopped");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (control_.fail) {
      ctx.failure_result = {{"held", "partly"}};
      return FailedPrecondition("cannot hold");
    }
    return nlohmann::json{{"held", ctx.parameters.value("what", "")}};
  }
  Result<nlohmann::json> Undo(ActionContext&) override {
    ++control_.undos;
    return nlohmann::json{{"held", false}};
  }

 private:
  HoldControl& control_;
};

quell::v1::ActionRequest Request(const std::string& id, const std::string& type = "Hold",
                                 const std::string& params = "{}", int64_t deadline = 0) {
  quell::v1::ActionRequest r;
  r.set_action_id(id);
  r.set_type(type);
  r.set_parameters_json(params);
  r.set_deadline_unix_ms(deadline);
  return r;
}

class ActionExecutorTest : public ::testing::Test {
 protected:
  ActionExecutorTest() {
    registry_.Register(std::make_unique<HoldAction>(control_));
    journal_ = ActionJournal::Open(dir_ / "actions", clock_).value();
    executor_ = std::make_unique<ActionExecutor>(registry_, *journal_, sink_, clock_);
  }

  quell::testing::TempDir dir_;
  FakeClock clock_;
  HoldControl control_;
  ActionRegistry registry_;
  std::unique_ptr<ActionJournal> journal_;
  FakeSink sink_;
  std::unique_ptr<ActionExecutor> executor_;
};

TEST_F(ActionExecutorTest, RunsActionReportsProgressThenSucceeds) {
  executor_->Submit(Request("a1", "Hold", R"({"what":"door"})"));
  auto final = sink_.WaitForFinal();
  EXPECT_EQ(final.action_id(), "a1");
  EXPECT_EQ(final.state(), quell::v1::ACTION_STATE_SUCCEEDED);
  EXPECT_EQ(nlohmann::json::parse(final.result_json()), (nlohmann::json{{"held", "door"}}));
  auto progress = sink_.progress();
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0].state(), quell::v1::ACTION_STATE_IN_PROGRESS);
  EXPECT_EQ(progress[1].progress_percent(), 50u);
  EXPECT_EQ(progress[1].message(), "halfway");
  EXPECT_EQ(journal_->Lookup("a1")->state, ActionJournal::State::kFinished);
}

TEST_F(ActionExecutorTest, UndoTypeRunsUndo) {
  executor_->Submit(Request("u1", "Unhold"));
  EXPECT_EQ(sink_.WaitForFinal().state(), quell::v1::ACTION_STATE_SUCCEEDED);
  EXPECT_EQ(control_.undos, 1);
  EXPECT_EQ(control_.runs, 0);
}

TEST_F(ActionExecutorTest, RefusalsFailWithTheReasonAndRunNothing) {
  executor_->Submit(Request("r1", "Reboot"));
  executor_->Submit(Request("r2", "Hold", R"({"bad":1})"));
  executor_->Submit(Request("r3", "Hold", "[1,2]"));
  executor_->Submit(Request("r4", "Hold", "{}", clock_.Now() - 1));
  executor_->Submit(Request("../../etc", "Hold"));
  sink_.WaitForFinal(5);
  std::vector<std::string> messages;
  for (const auto& f : sink_.finals()) {
    EXPECT_EQ(f.state(), quell::v1::ACTION_STATE_FAILED) << f.action_id();
    messages.push_back(f.message());
  }
  EXPECT_THAT(messages, ElementsAre(HasSubstr("does not support action type Reboot"),
                                    "invalid parameters: bad is not allowed",
                                    "parameters are not a JSON object", HasSubstr("expired"),
                                    "malformed action id"));
  EXPECT_EQ(control_.runs, 0);
  EXPECT_TRUE(sink_.progress().empty());
}

TEST_F(ActionExecutorTest, FailureOfTheActionIsReported) {
  control_.fail = true;
  executor_->Submit(Request("f1"));
  auto final = sink_.WaitForFinal();
  EXPECT_EQ(final.state(), quell::v1::ACTION_STATE_FAILED);
  EXPECT_EQ(final.message(), "cannot hold");
  EXPECT_EQ(final.result_json(), R"({"held":"partly"})");  // what it did before failing
}

TEST_F(ActionExecutorTest, RedeliveryWhileRunningIsIgnoredAndAfterFinishResendsTheResult) {
  std::latch started(1);
  control_.block = true;
  control_.started = &started;
  executor_->Submit(Request("d1"));
  started.wait();
  executor_->Submit(Request("d1"));  // redelivered while running
  EXPECT_THAT(executor_->RunningIds(), ElementsAre("d1"));
  control_.release = true;
  auto first = sink_.WaitForFinal(1);
  executor_->WaitIdle();
  EXPECT_TRUE(executor_->RunningIds().empty());

  executor_->Submit(Request("d1"));  // redelivered after it finished
  auto again = sink_.WaitForFinal(2);
  EXPECT_EQ(control_.runs, 1);
  EXPECT_EQ(again.action_id(), "d1");
  EXPECT_EQ(again.state(), quell::v1::ACTION_STATE_SUCCEEDED);
  EXPECT_EQ(again.result_json(), first.result_json());
  EXPECT_GT(again.sequence(), first.sequence());  // spooled anew, acknowledged anew
}

TEST_F(ActionExecutorTest, FinishedActionIsNotRunAgainAfterRestart) {
  executor_->Submit(Request("p1"));
  sink_.WaitForFinal(1);
  executor_ = std::make_unique<ActionExecutor>(registry_, *journal_, sink_, clock_);
  executor_->Submit(Request("p1"));
  EXPECT_EQ(sink_.WaitForFinal(2).state(), quell::v1::ACTION_STATE_SUCCEEDED);
  EXPECT_EQ(control_.runs, 1);
}

TEST_F(ActionExecutorTest, ShutdownMidRunReportsNothingAndTheActionRunsAgainAfterRestart) {
  std::latch started(1);
  control_.block = true;
  control_.started = &started;
  executor_->Submit(Request("s1"));
  started.wait();
  executor_.reset();  // the agent stops while the action runs
  EXPECT_TRUE(sink_.finals().empty());
  EXPECT_EQ(journal_->Lookup("s1")->state, ActionJournal::State::kStarted);

  control_.block = false;
  executor_ = std::make_unique<ActionExecutor>(registry_, *journal_, sink_, clock_);
  executor_->Submit(Request("s1"));  // the server redelivers it
  EXPECT_EQ(sink_.WaitForFinal().state(), quell::v1::ACTION_STATE_SUCCEEDED);
  EXPECT_EQ(control_.runs, 2);
}

TEST_F(ActionExecutorTest, CancelStopsARunningAction) {
  std::latch started(1);
  control_.block = true;
  control_.started = &started;
  executor_->Submit(Request("c1"));
  started.wait();
  executor_->Cancel("c1");
  executor_->Cancel("not-running");  // harmless
  auto final = sink_.WaitForFinal();
  EXPECT_EQ(final.state(), quell::v1::ACTION_STATE_CANCELLED);
  EXPECT_EQ(final.message(), "stopped");
}

}  // namespace
}  // namespace quell::agent
