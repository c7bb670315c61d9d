#include "server/live/live_broker.h"

#include <gtest/gtest.h>

#include "common/hash.h"
#include "server/api/routes_test_fixture.h"
#include "server/gateway/artifact_transfer.h"
#include "server/live/live_line.h"

namespace quell::server::live {
namespace {

using nlohmann::json;

// What the client sees: every frame, and whether (and why) the server closed.
class FakeConnection final : public http::WebSocketConnection {
 public:
  void SendText(std::string text) override {
    std::lock_guard lock(mu_);
    if (closed_) return;
    frames_.push_back(json::parse(text));
  }
  void Close(std::string reason) override {
    std::lock_guard lock(mu_);
    closed_ = true;
    close_reason_ = reason;
  }
  std::vector<json> Frames() {
    std::lock_guard lock(mu_);
    return frames_;
  }
  // Frames of `type` (and of command `id` when not 0).
  std::vector<json> Of(const std::string& type, uint32_t id = 0) {
    std::vector<json> out;
    for (const json& f : Frames()) {
      if (f["type"] == type && (id == 0 || f.value("commandId", 0u) == id)) out.push_back(f);
    }
    return out;
  }
  bool closed() {
    std::lock_guard lock(mu_);
    return closed_;
  }
  std::string close_reason() {
    std::lock_guard lock(mu_);
    return close_reason_;
  }

 private:
  std::mutex mu_;
  std::vector<json> frames_;
  bool closed_ = false;
  std::string close_reason_;
};

// An agent's stream: records what the server sends it.
class FakeStream final : public AgentStream {
 public:
  void Enqueue(quell::v1::ServerMessage message) override { sent.push_back(std::move(message)); }
  void Terminate(int, const std::string&) override {}
  std::vector<quell::v1::LiveCommand> Commands() const {
    std::vector<quell::v1::LiveCommand> out;
    for (const auto& m : sent) {
      if (m.has_live_command()) out.push_back(m.live_command());
    }
    return out;
  }
  std::vector<quell::v1::LiveCancel> Cancels() const {
    std::vector<quell::v1::LiveCancel> out;
    for (const auto& m : sent) {
      if (m.has_live_cancel()) out.push_back(m.live_cancel());
    }
    return out;
  }
  std::vector<quell::v1::ServerMessage> sent;
};

class LiveBrokerTest : public server::testing::RoutesTest {
 protected:
  void SetUp() override {
    RoutesTest::SetUp();
    actions_->SetDispatcher(&sessions_);
    broker_ = std::make_unique<LiveSessionBroker>(*api_, BrokerOptions{});
    AddLiveResponseRoutes(router_, *api_, *broker_);
    link_ = std::make_shared<AgentLink>("m1", &stream_);
    sessions_.Register(link_);
  }
  void TearDown() override {
    broker_.reset();
    sessions_.Unregister(link_);
    link_->Detach();
  }

  http::UpgradeDecision Upgrade(const std::string& token, const std::string& machine = "m1") {
    http::Request request{.method = "GET", .target = "/api/machines/" + machine + "/liveresponse"};
    request.path_params["id"] = machine;
    request.headers["authorization"] = "Bearer " + token;
    return broker_->Open(request);
  }

  // Opens a session on m1 and has the agent start its action.
  std::string OpenSession(const std::string& token) {
    http::UpgradeDecision decision = Upgrade(token);
    EXPECT_NE(decision.handler, nullptr) << decision.refusal.body;
    handler_ = decision.handler;
    conn_ = std::make_shared<FakeConnection>();
    handler_->OnOpen(conn_);
    const json first = conn_->Frames().at(0);
    EXPECT_EQ(first["type"], "session");
    const std::string id = first["sessionId"];
    EXPECT_TRUE(actions_->ApplyAgentReport("m1", {.action_id = id,
                                                  .event = ActionEvent::kAgentStarted,
                                                  .message = "session open"})
                    .ok());
    return id;
  }

  void Line(const std::string& line) {
    handler_->OnText(json{{"type", "command"}, {"line", line}}.dump());
  }

  void AgentOutput(const std::string& session, uint32_t id, const std::string& text,
                   bool done = false, const std::string& status = "Completed",
                   const std::string& device = "m1") {
    quell::v1::LiveOutput out;
    out.set_session_id(session);
    out.set_command_id(id);
    out.set_text(text);
    out.set_done(done);
    if (done) {
      out.set_status(status);
      out.set_cwd("/etc");
    }
    broker_->OnLiveOutput(device, out);
  }

  std::vector<json> AuditDetails(const std::string& target, const std::string& operation) {
    std::vector<json> out;
    Result<std::vector<AuditEntry>> entries = store_->ListAudit({.target = target});
    EXPECT_TRUE(entries.ok());
    if (!entries.ok()) return out;
    for (const AuditEntry& e : *entries) {
      if (e.operation == operation) out.push_back(json::parse(e.details_json));
    }
    return out;
  }

  FakeStream stream_;
  std::shared_ptr<AgentLink> link_;
  std::unique_ptr<LiveSessionBroker> broker_;
  std::shared_ptr<http::WebSocketHandler> handler_;
  std::shared_ptr<FakeConnection> conn_;
};

TEST_F(LiveBrokerTest, RefusalsBeforeTheUpgrade) {
  EXPECT_EQ(Upgrade("nope").refusal.status, 401);
  EXPECT_EQ(Upgrade(viewer_).refusal.status, 403);
  EXPECT_EQ(Upgrade(responder_, "m9").refusal.status, 404);
  http::UpgradeDecision offline = Upgrade(responder_, "m2");
  EXPECT_EQ(offline.handler, nullptr);
  EXPECT_EQ(offline.refusal.status, 409);
  EXPECT_EQ(json::parse(offline.refusal.body)["error"]["code"], "DeviceNotConnected");

  OpenSession(responder_);
  http::UpgradeDecision second = Upgrade(admin_);
  EXPECT_EQ(second.handler, nullptr);
  EXPECT_EQ(second.refusal.status, 400);
  EXPECT_EQ(json::parse(second.refusal.body)["error"]["code"], "ActiveRequestAlreadyExists");

  FakeStream stream2;
  auto link2 = std::make_shared<AgentLink>("m2", &stream2);
  sessions_.Register(link2);
  api_->max_live_response_sessions = 1;
  EXPECT_EQ(Upgrade(admin_, "m2").refusal.status, 429);
  sessions_.Unregister(link2);
  link2->Detach();
}

TEST_F(LiveBrokerTest, WebSocketRouteOpensASession) {
  http::Request request{.method = "GET", .target = "/api/machines/m1/liveresponse"};
  request.headers["authorization"] = "Bearer " + responder_;
  const http::WebSocketRoute* route = router_.MatchWebSocket(request);
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->options.max_message_bytes, 64u << 10);
  http::UpgradeDecision decision = route->handler(request);
  ASSERT_NE(decision.handler, nullptr) << decision.refusal.body;
  EXPECT_EQ(broker_->SessionCount(), 1u);
  decision.handler->OnClose();  // the handshake failed after all: the session ends
  EXPECT_EQ(broker_->SessionCount(), 0u);
  EXPECT_EQ(Call("GET", "/api/machines/m1/liveresponse", responder_).status, 426);
}

TEST_F(LiveBrokerTest, SessionMessageAndActionShape) {
  const std::string id = OpenSession(responder_);
  const json first = conn_->Frames().at(0);
  EXPECT_EQ(first["machineId"], "m1");
  EXPECT_EQ(first["computerDnsName"], "h-m1");
  EXPECT_EQ(first["idleTimeoutSeconds"], 1800);
  EXPECT_EQ(first["role"], "Responder");
  MachineAction action = store_->GetAction(id).value();
  EXPECT_EQ(action.type, "LiveResponse");
  EXPECT_EQ(json::parse(action.parameters_json), (json{{"Interactive", true}}));
  EXPECT_EQ(action.requestor, "alice");
  EXPECT_EQ(AuditDetails(id, "live.session.opened").size(), 1u);
  // The Action center shows the session like any action.
  auto shown = Call("GET", "/api/machineactions/" + id, viewer_);
  EXPECT_EQ(shown.status, 200) << shown.body;
  EXPECT_EQ(shown.body["type"], "LiveResponse");
  EXPECT_EQ(shown.body["requestSource"], "LiveResponse");
  // The agent may fetch any library file, as the library holds it now.
  ASSERT_TRUE(store_->PutLibraryFile({.name = "tool.sh", .sha256 = std::string(64, 'a'), .size = 3}).ok());
  ArtifactTransferService transfer(*store_, *blobs_, clock_);
  EXPECT_EQ(transfer.AuthorizeLibraryFetch("m1", id, "tool.sh").value(), std::string(64, 'a'));
  EXPECT_FALSE(transfer.AuthorizeLibraryFetch("m1", id, "other.sh").ok());
  EXPECT_FALSE(transfer.AuthorizeLibraryFetch("m2", id, "tool.sh").ok());
}

TEST_F(LiveBrokerTest, ResponderCannotRunAndUnknownCommandsFail) {
  const std::string id = OpenSession(responder_);
  Line("run collect.sh -v");
  auto done = conn_->Of("done", 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0]["status"], "Failed");
  EXPECT_EQ(done[0]["error"], "run needs the admin role");
  Line("frobnicate now");
  done = conn_->Of("done", 2);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0]["status"], "Failed");
  EXPECT_NE(done[0]["error"].get<std::string>().find("unknown command 'frobnicate'"),
            std::string::npos);
  Line("ls 'unbalanced");
  EXPECT_EQ(conn_->Of("done", 3).at(0)["status"], "Failed");
  EXPECT_TRUE(stream_.Commands().empty());  // none reached the agent
  auto audited = AuditDetails(id, "live.command");
  ASSERT_EQ(audited.size(), 3u);
  EXPECT_EQ(audited[0]["line"], "run collect.sh -v");
  EXPECT_EQ(audited[0]["status"], "Failed");
}

TEST_F(LiveBrokerTest, EveryServerCommandRuns) {
  // The command table and the server's code must not drift apart.
  const std::string id = OpenSession(admin_);
  size_t sent = 0;
  for (const CommandSpec& spec : Commands()) {
    if (spec.side != CommandSide::kServer) continue;
    Line(std::string(spec.name) + " &");
    ++sent;
  }
  ASSERT_GT(sent, 5u);
  for (const json& ended : AuditDetails(id, "live.command")) {
    EXPECT_EQ(ended["error"].get<std::string>().find("internal error"), std::string::npos)
        << ended.dump();
  }
}

TEST_F(LiveBrokerTest, AdminRunChecksArgumentsAndLibrary) {
  OpenSession(admin_);
  Line("run tool.sh 'a;b'");
  EXPECT_NE(conn_->Of("done", 1).at(0)["error"].get<std::string>().find("';'"), std::string::npos);
  Line("putfile missing.bin");
  EXPECT_NE(conn_->Of("done", 2).at(0)["error"].get<std::string>().find("does not exist"),
            std::string::npos);
  EXPECT_TRUE(stream_.Commands().empty());
  ASSERT_TRUE(store_->PutLibraryFile({.name = "tool.sh", .sha256 = std::string(64, 'b'), .size = 42}).ok());
  Line("run tool.sh -x 1");
  ASSERT_EQ(stream_.Commands().size(), 1u);
  const quell::v1::LiveCommand sent = stream_.Commands()[0];
  EXPECT_EQ(sent.command_id(), 3u);
  EXPECT_EQ(sent.library_sha256(), std::string(64, 'b'));
  EXPECT_EQ(sent.library_size(), 42u);
  EXPECT_EQ(sent.time_limit_seconds(), 600u);
  EXPECT_EQ(sent.requested_by(), "admin");
}

TEST_F(LiveBrokerTest, AgentCommandRoundTripIsAuditedAndListed) {
  const std::string id = OpenSession(responder_);
  Line("ls -l '/etc' -output json");
  ASSERT_EQ(stream_.Commands().size(), 1u);
  const quell::v1::LiveCommand sent = stream_.Commands()[0];
  EXPECT_EQ(sent.session_id(), id);
  EXPECT_EQ(std::vector<std::string>(sent.argv().begin(), sent.argv().end()),
            (std::vector<std::string>{"ls", "-l", "/etc"}));
  EXPECT_EQ(sent.output_format(), "json");
  EXPECT_EQ(sent.time_limit_seconds(), 120u);
  EXPECT_EQ(conn_->Of("started", 1).at(0)["background"], false);

  AgentOutput(id, 1, "forged", true, "Completed", "m2");  // another device: dropped
  EXPECT_TRUE(conn_->Of("done", 1).empty());
  AgentOutput(id, 1, "passwd\n");
  clock_.Advance(250);
  AgentOutput(id, 1, "hosts\n", true);
  EXPECT_EQ(conn_->Of("output", 1).size(), 2u);
  auto done = conn_->Of("done", 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0]["status"], "Completed");
  EXPECT_EQ(done[0]["cwd"], "/etc");
  EXPECT_EQ(done[0]["durationMs"], 250);

  auto audited = AuditDetails(id, "live.command");
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_EQ(audited[0]["output"], "passwd\nhosts\n");
  EXPECT_EQ(audited[0]["machineId"], "m1");
  EXPECT_EQ(audited[0]["durationMs"], 250);

  auto listed = Call("GET", "/api/liveresponse/sessions/" + id + "/commands", responder_);
  ASSERT_EQ(listed.status, 200) << listed.body;
  ASSERT_EQ(listed.body["value"].size(), 1u);
  EXPECT_EQ(listed.body["value"][0]["requestedBy"], "alice");
  EXPECT_EQ(listed.body["value"][0]["line"], "ls -l '/etc' -output json");
  EXPECT_EQ(listed.body["value"][0]["output"], "passwd\nhosts\n");
  EXPECT_EQ(Call("GET", "/api/liveresponse/sessions/" + id + "/commands", viewer_).status, 403);
  EXPECT_EQ(Call("GET", "/api/liveresponse/sessions/nope/commands", responder_).status, 404);
}

TEST_F(LiveBrokerTest, LargeOutputIsAuditedAsItsHash) {
  const std::string id = OpenSession(responder_);
  Line("processes");
  const std::string chunk(40 << 10, 'x');
  AgentOutput(id, 1, chunk);
  AgentOutput(id, 1, chunk, true);
  auto audited = AuditDetails(id, "live.command");
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_FALSE(audited[0].contains("output"));
  EXPECT_EQ(audited[0]["outputSha256"], Sha256Hex(chunk + chunk));
  EXPECT_EQ(audited[0]["outputBytes"], 2 * chunk.size());
}

TEST_F(LiveBrokerTest, OneForegroundCommandAtATime) {
  const std::string id = OpenSession(responder_);
  Line("findfile '*.so'");
  Line("pwd");
  auto errors = conn_->Of("error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["error"],
            "command 1 is still running; wait, cancel it, or end the line with &");
  Line("pwd &");  // background is fine
  EXPECT_EQ(stream_.Commands().size(), 2u);
  // Cancel goes to the agent; the agent's answer ends the command.
  handler_->OnText(R"({"type":"cancel"})");
  ASSERT_EQ(stream_.Cancels().size(), 1u);
  EXPECT_EQ(stream_.Cancels()[0].command_id(), 1u);
  AgentOutput(id, 1, "", true, "Cancelled");
  EXPECT_EQ(conn_->Of("done", 1).at(0)["status"], "Cancelled");
}

TEST_F(LiveBrokerTest, BackgroundJobsAndFg) {
  const std::string id = OpenSession(responder_);
  Line("getfile /var/log/big.log &");
  EXPECT_EQ(conn_->Of("started", 1).at(0)["background"], true);
  AgentOutput(id, 1, "uploading 10%\n");
  EXPECT_TRUE(conn_->Of("output", 1).empty());  // background output is buffered
  Line("jobs");
  std::string jobs;
  for (const json& o : conn_->Of("output", 2)) jobs += o["text"];
  EXPECT_NE(jobs.find("[1] Running"), std::string::npos) << jobs;
  EXPECT_NE(jobs.find("getfile /var/log/big.log &"), std::string::npos);
  Line("fg 1");
  EXPECT_EQ(conn_->Of("done", 3).at(0)["status"], "Completed");
  auto replay = conn_->Of("output", 1);
  ASSERT_EQ(replay.size(), 1u);
  EXPECT_EQ(replay[0]["text"], "uploading 10%\n");
  // Now in the foreground: a plain cancel targets it, and its output streams.
  AgentOutput(id, 1, "uploading 60%\n");
  EXPECT_EQ(conn_->Of("output", 1).size(), 2u);
  quell::v1::LiveOutput out;
  out.set_session_id(id);
  out.set_command_id(1);
  out.set_done(true);
  out.set_status("Completed");
  out.set_artifact_name("command-1");
  out.set_artifact_size(10);
  out.set_artifact_sha256(std::string(64, 'c'));
  broker_->OnLiveOutput("m1", out);
  auto done = conn_->Of("done", 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0]["artifact"]["name"], "command-1");
  EXPECT_TRUE(conn_->Of("job").empty());
  auto audited = AuditDetails(id, "live.command");
  ASSERT_EQ(audited.size(), 3u);
  EXPECT_EQ(audited[2]["background"], true);
  EXPECT_EQ(audited[2]["artifact"]["size"], 10);
}

TEST_F(LiveBrokerTest, BackgroundCommandEndsWithAJobMessage) {
  const std::string id = OpenSession(responder_);
  Line("persistence &");
  AgentOutput(id, 1, "cron: x\n", true);
  auto job = conn_->Of("job", 1);
  ASSERT_EQ(job.size(), 1u);
  EXPECT_EQ(job[0]["status"], "Completed");
  EXPECT_TRUE(conn_->Of("done", 1).empty());
}

TEST_F(LiveBrokerTest, IdleSessionIsClosed) {
  const std::string id = OpenSession(responder_);
  clock_.Advance(29 * 60 * 1000);
  broker_->Tick();
  EXPECT_FALSE(conn_->closed());
  Line("help");  // activity resets the timer
  clock_.Advance(29 * 60 * 1000);
  broker_->Tick();
  EXPECT_FALSE(conn_->closed());
  clock_.Advance(60 * 1000);
  broker_->Tick();
  ASSERT_TRUE(conn_->closed());
  auto closed = conn_->Of("closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0]["reason"], "idle for 30 minutes");
  EXPECT_EQ(broker_->SessionCount(), 0u);
  ASSERT_EQ(stream_.Cancels().size(), 1u);
  EXPECT_EQ(stream_.Cancels()[0].command_id(), 0u);  // the agent ends the session
  auto audited = AuditDetails(id, "live.session.closed");
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_EQ(audited[0]["reason"], "idle for 30 minutes");
  // The device's live response slot is free again once the agent confirms.
  ASSERT_TRUE(actions_->ApplyAgentReport("m1", {.action_id = id, .event = ActionEvent::kAgentSucceeded}).ok());
  EXPECT_NE(Upgrade(responder_).handler, nullptr);
}

TEST_F(LiveBrokerTest, AgentDisconnectEndsTheRunningCommand) {
  const std::string id = OpenSession(responder_);
  Line("findfile secret.txt /");
  broker_->Tick();
  EXPECT_TRUE(conn_->Of("done", 1).empty());
  sessions_.Unregister(link_);
  link_->Detach();
  broker_->Tick();
  auto done = conn_->Of("done", 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0]["status"], "Disconnected");
  EXPECT_EQ(done[0]["error"], "the device disconnected while the command ran");
  // A reconnect (a new link) does not revive it; a new command goes to the new stream.
  FakeStream again;
  auto link2 = std::make_shared<AgentLink>("m1", &again);
  sessions_.Register(link2);
  Line("pwd");
  EXPECT_EQ(again.Commands().size(), 1u);
  EXPECT_EQ(AuditDetails(id, "live.command").at(0)["status"], "Disconnected");
  broker_.reset();
  sessions_.Unregister(link2);
  link2->Detach();
}

TEST_F(LiveBrokerTest, CommandPastItsLimitTimesOut) {
  const std::string id = OpenSession(responder_);
  Line("connections");
  clock_.Advance(149'000);
  broker_->Tick();
  EXPECT_TRUE(conn_->Of("done", 1).empty());
  clock_.Advance(1'000);
  broker_->Tick();
  auto done = conn_->Of("done", 1);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0]["status"], "TimedOut");
  ASSERT_EQ(stream_.Cancels().size(), 1u);
  EXPECT_EQ(stream_.Cancels()[0].command_id(), 1u);
  AgentOutput(id, 1, "late", true);  // ignored
  EXPECT_EQ(conn_->Of("done", 1).size(), 1u);
}

TEST_F(LiveBrokerTest, ServerCommandsFollowActions) {
  const std::string id = OpenSession(responder_);
  Line("scan full");
  auto scans = store_->ListActions({.type = "RunAntiVirusScan"}).value();
  ASSERT_EQ(scans.size(), 1u);
  EXPECT_EQ(scans[0].scope, "Full");
  EXPECT_EQ(scans[0].requestor, "alice");
  EXPECT_EQ(scans[0].request_source, "LiveResponse");
  EXPECT_TRUE(conn_->Of("done", 1).empty());
  ASSERT_TRUE(actions_->ApplyAgentReport("m1", {.action_id = scans[0].id,
                                                .event = ActionEvent::kAgentStarted,
                                                .message = "scanning",
                                                .progress_percent = 40})
                  .ok());
  broker_->Tick();
  ASSERT_TRUE(actions_->ApplyAgentReport("m1", {.action_id = scans[0].id,
                                                .event = ActionEvent::kAgentSucceeded,
                                                .message = "no threats"})
                  .ok());
  broker_->Tick();
  std::string text;
  for (const json& o : conn_->Of("output", 1)) text += o["text"];
  EXPECT_NE(text.find(scans[0].id), std::string::npos) << text;
  EXPECT_NE(text.find("InProgress 40%: scanning"), std::string::npos) << text;
  EXPECT_EQ(conn_->Of("done", 1).at(0)["status"], "Completed");

  Line("collect");
  handler_->OnText(R"({"type":"cancel"})");
  EXPECT_EQ(conn_->Of("done", 2).at(0)["status"], "Cancelled");
  auto collects = store_->ListActions({.type = "CollectInvestigationPackage"}).value();
  ASSERT_EQ(collects.size(), 1u);
  EXPECT_EQ(collects[0].status, ActionStatus::kCancelled);

  Line("isolate");  // admin only
  EXPECT_EQ(conn_->Of("done", 3).at(0)["error"], "isolate needs the admin role");
  EXPECT_EQ(AuditDetails(id, "live.command").size(), 3u);
}

TEST_F(LiveBrokerTest, CloseMessageAndClientGoingAwayEndTheSession) {
  const std::string id = OpenSession(responder_);
  handler_->OnText(R"({"type":"close"})");
  EXPECT_TRUE(conn_->closed());
  EXPECT_EQ(conn_->Of("closed").at(0)["reason"], "closed by the client");
  EXPECT_EQ(stream_.Cancels().at(0).command_id(), 0u);
  handler_->OnClose();  // the transport's OnClose afterwards changes nothing
  EXPECT_EQ(AuditDetails(id, "live.session.closed").size(), 1u);
  ASSERT_TRUE(actions_->ApplyAgentReport("m1", {.action_id = id, .event = ActionEvent::kAgentSucceeded}).ok());

  // Client gone without "close", agent not connected: the action is cancelled.
  const std::string second = OpenSession(responder_);
  Line("ls");
  sessions_.Unregister(link_);
  handler_->OnClose();
  EXPECT_EQ(broker_->SessionCount(), 0u);
  EXPECT_TRUE(store_->GetAction(second).value().cancellation_time.has_value());
  EXPECT_EQ(AuditDetails(second, "live.session.closed").at(0)["reason"], "the client went away");
  EXPECT_EQ(AuditDetails(second, "live.command").at(0)["status"], "Cancelled");
}

TEST_F(LiveBrokerTest, BadClientMessagesKeepTheSession) {
  OpenSession(responder_);
  handler_->OnText("not json");
  handler_->OnText(R"({"type":"dance"})");
  handler_->OnText(R"({"type":"cancel"})");
  EXPECT_EQ(conn_->Of("error").size(), 3u);
  EXPECT_FALSE(conn_->closed());
  EXPECT_EQ(broker_->SessionCount(), 1u);
}

TEST_F(LiveBrokerTest, DownloadLinkForAFetchedFile) {
  const std::string id = OpenSession(responder_);
  Line("getfile /etc/hosts");
  auto blob = blobs_->Put("127.0.0.1 localhost\n").value();
  ASSERT_TRUE(store_->PutActionArtifact({.action_id = id, .name = "command-1",
                                         .sha256 = blob.sha256, .size = blob.size}).ok());
  quell::v1::LiveOutput out;
  out.set_session_id(id);
  out.set_command_id(1);
  out.set_done(true);
  out.set_status("Completed");
  out.set_artifact_name("command-1");
  out.set_artifact_size(blob.size);
  out.set_artifact_sha256(blob.sha256);
  broker_->OnLiveOutput("m1", out);
  Line("pwd");
  AgentOutput(id, 2, "/\n", true);
  auto link = Call("GET", "/api/liveresponse/sessions/" + id + "/commands/1/download", responder_);
  ASSERT_EQ(link.status, 200) << link.body;
  EXPECT_EQ(link.body["sha256"], blob.sha256);
  EXPECT_NE(link.body["value"].get<std::string>().find("/api/downloads/"), std::string::npos);
  EXPECT_EQ(Call("GET", "/api/liveresponse/sessions/" + id + "/commands/2/download", responder_).status,
            404);
  EXPECT_EQ(Call("GET", "/api/liveresponse/sessions/" + id + "/commands/9/download", responder_).status,
            404);
}

}  // namespace
}  // namespace quell::server::live
