// WebSocketClient and the non-interactive session loop against a small scripted live
// response server in this process (TLS with a throwaway CA, Beast WebSocket, plus the REST
// routes getfile downloads use). The real server is tested with it in the lab tests.
#include "cli/websocket_client.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli_context.h"
#include "cli/downloads.h"
#include "cli/live_command.h"
#include "common/files.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"
#include "common/testing/test_pki.h"

namespace quell::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using nlohmann::json;

const std::string kFileData = "remote file contents\n";

// Plays the server's side of the protocol (docs/api.md) for a few command lines:
//   pwd -> started, output "/root\n", done Completed; bogus -> done Failed (no started);
//   getfile <p> -> started, done with an artifact; sleep -> started, then waits for a cancel
//   and answers done Cancelled; "x &" -> started background, job Completed;
//   close -> closed, then the WebSocket close. With idle_close, the server ends the session
//   right after the first command.
class FakeLiveServer {
 public:
  FakeLiveServer() {
    const testing::TestPki pki = testing::MakeTestPki();
    ca_file_ = dir_ / "ca.pem";
    std::ofstream(ca_file_) << pki.ca.cert_pem;
    tls_.use_certificate_chain(asio::buffer(pki.server.cert_pem));
    tls_.use_private_key(asio::buffer(pki.server.key_pem), asio::ssl::context::pem);
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeLiveServer() {
    stopping_ = true;
    boost::system::error_code ec;
    // Wake the accept loop with one last connection.
    tcp::socket poke(io_);
    poke.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
    std::lock_guard lock(mu_);
    for (auto& t : connections_) t.join();
  }

  ApiClientOptions Options(const std::string& ca_file = "") const {
    return {.base_url = Url(), .token = "tok-1", .ca_file = ca_file.empty() ? ca_file_ : ca_file,
            .timeout = std::chrono::seconds(10)};
  }
  std::string Url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const std::string& ca_file() const { return ca_file_; }

  std::vector<json> Received() {
    std::lock_guard lock(mu_);
    return received_;
  }
  std::string Authorization() {
    std::lock_guard lock(mu_);
    return authorization_;
  }
  std::string Target() {
    std::lock_guard lock(mu_);
    return target_;
  }

  std::atomic<bool> refuse{false};
  std::atomic<bool> idle_close{false};

 private:
  using Ws = websocket::stream<beast::ssl_stream<tcp::socket>>;

  void AcceptLoop() {
    while (true) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_ || ec) return;
      std::lock_guard lock(mu_);
      connections_.emplace_back([this, s = std::move(socket)]() mutable { Serve(std::move(s)); });
    }
  }

  void Serve(tcp::socket socket) {
    boost::system::error_code ec;
    Ws ws(std::move(socket), tls_);
    ws.next_layer().handshake(asio::ssl::stream_base::server, ec);
    if (ec) return;
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> request;
    bhttp::read(ws.next_layer(), buffer, request, ec);
    if (ec) return;
    if (!websocket::is_upgrade(request)) {
      Rest(ws.next_layer(), request);
      return;
    }
    {
      std::lock_guard lock(mu_);
      authorization_ = std::string(request[bhttp::field::authorization]);
      target_ = std::string(request.target());
    }
    if (refuse) {
      bhttp::response<bhttp::string_body> response{bhttp::status::bad_request, 11};
      response.set(bhttp::field::content_type, "application/json");
      response.body() = R"({"error":{"code":"ActiveRequestAlreadyExists","message":"a live response session is already open on this device"}})";
      response.prepare_payload();
      bhttp::write(ws.next_layer(), response, ec);
      return;
    }
    ws.accept(request, ec);
    if (ec) return;
    ws.text(true);
    Script(ws);
  }

  void Send(Ws& ws, const json& message) {
    boost::system::error_code ec;
    ws.write(asio::buffer(message.dump()), ec);
  }

  std::optional<json> Read(Ws& ws) {
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    ws.read(buffer, ec);
    if (ec) return std::nullopt;
    json message = json::parse(beast::buffers_to_string(buffer.data()), nullptr, false);
    std::lock_guard lock(mu_);
    received_.push_back(message);
    return message;
  }

  void Script(Ws& ws) {
    Send(ws, {{"type", "session"}, {"sessionId", "sess-1"}, {"machineId", "m-1"},
              {"computerDnsName", "web-1"}, {"idleTimeoutSeconds", 1800}, {"cwd", "/"},
              {"role", "Responder"}});
    int next_id = 0;
    while (auto message = Read(ws)) {
      const std::string type = message->value("type", "");
      if (type == "close") {
        Send(ws, {{"type", "closed"}, {"reason", "ended by the client"}});
        break;
      }
      if (type != "command") continue;
      const std::string line = message->value("line", "");
      const int id = ++next_id;
      auto done = [&](const std::string& status, const std::string& error) {
        return json{{"type", "done"}, {"commandId", id}, {"status", status},
                    {"error", error}, {"durationMs", 1}, {"cwd", "/root"}};
      };
      if (line == "bogus") {
        Send(ws, done("Failed", "unknown command: bogus"));
      } else if (line == "pwd") {
        Send(ws, {{"type", "started"}, {"commandId", id}, {"line", line}, {"background", false}});
        Send(ws, {{"type", "output"}, {"commandId", id}, {"text", "/ro"}});
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        Send(ws, {{"type", "output"}, {"commandId", id}, {"text", "ot\n"}});
        Send(ws, done("Completed", ""));
      } else if (line.starts_with("getfile ")) {
        Send(ws, {{"type", "started"}, {"commandId", id}, {"line", line}, {"background", false}});
        json d = done("Completed", "");
        d["artifact"] = {{"name", "command-" + std::to_string(id)},
                         {"size", kFileData.size()}, {"sha256", Sha256Hex(kFileData)}};
        Send(ws, d);
      } else if (line == "sleep") {
        Send(ws, {{"type", "started"}, {"commandId", id}, {"line", line}, {"background", false}});
        while (auto next = Read(ws)) {
          if (next->value("type", "") == "cancel") break;
        }
        Send(ws, done("Cancelled", "cancelled by the user"));
      } else if (line == "slow &") {  // stays running until someone says fg
        Send(ws, {{"type", "started"}, {"commandId", id}, {"line", line}, {"background", true}});
      } else if (line.starts_with("fg ")) {
        const int target = std::stoi(line.substr(3));
        Send(ws, {{"type", "started"}, {"commandId", id}, {"line", line}, {"background", false}});
        Send(ws, done("Completed", ""));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        Send(ws, {{"type", "output"}, {"commandId", target}, {"text", "late output\n"}});
        Send(ws, {{"type", "done"}, {"commandId", target}, {"status", "Completed"}, {"error", ""}});
      } else if (line.ends_with("&")) {
        Send(ws, {{"type", "started"}, {"commandId", id}, {"line", line}, {"background", true}});
        Send(ws, {{"type", "job"}, {"commandId", id}, {"status", "Completed"}});
      } else {
        Send(ws, done("Failed", "unknown command"));
      }
      if (idle_close) {
        Send(ws, {{"type", "closed"}, {"reason", "idle timeout (30 min)"}});
        break;
      }
    }
    boost::system::error_code ec;
    ws.close(websocket::close_code::normal, ec);
  }

  void Rest(beast::ssl_stream<tcp::socket>& stream, const bhttp::request<bhttp::string_body>& request) {
    bhttp::response<bhttp::string_body> response{bhttp::status::ok, 11};
    const std::string target(request.target());
    if (target.starts_with("/api/liveresponse/sessions/sess-1/commands/") &&
        target.ends_with("/download")) {
      response.set(bhttp::field::content_type, "application/json");
      response.body() = json{{"value", Url() + "/dl/blob?sig=x"},
                             {"sha256", Sha256Hex(kFileData)},
                             {"size", kFileData.size()}}.dump();
    } else if (target == "/dl/blob?sig=x") {
      response.set(bhttp::field::content_type, "application/octet-stream");
      response.body() = kFileData;
    } else {
      response.result(bhttp::status::not_found);
      response.body() = R"({"error":{"code":"NotFound","message":"no such route"}})";
    }
    response.keep_alive(false);
    response.prepare_payload();
    boost::system::error_code ec;
    bhttp::write(stream, response, ec);
  }

  testing::TempDir dir_;
  std::string ca_file_;
  asio::io_context io_;
  asio::ssl::context tls_{asio::ssl::context::tls_server};
  tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::thread> connections_;
  std::vector<json> received_;
  std::string authorization_, target_;
};

std::vector<json> ReadUntil(WebSocketClient& ws, const std::string& type) {
  std::vector<json> out;
  for (int i = 0; i < 50; ++i) {
    auto event = ws.WaitPop(std::chrono::seconds(5));
    if (!event || event->kind != WebSocketEvent::Kind::kText) break;
    out.push_back(json::parse(event->text));
    if (out.back()["type"] == type) break;
  }
  return out;
}

TEST(WebSocketClientTest, ConnectsWithTheTokenAndExchangesMessages) {
  FakeLiveServer server;
  auto ws = WebSocketClient::Connect(server.Options(), "/api/machines/m-1/liveresponse");
  ASSERT_TRUE(ws.ok()) << ws.status().ToString();
  EXPECT_EQ(server.Authorization(), "Bearer tok-1");
  EXPECT_EQ(server.Target(), "/api/machines/m-1/liveresponse");
  auto session = ReadUntil(**ws, "session");
  ASSERT_EQ(session.size(), 1u);
  EXPECT_EQ(session[0]["sessionId"], "sess-1");

  (*ws)->Send(json{{"type", "command"}, {"line", "pwd"}}.dump());
  auto messages = ReadUntil(**ws, "done");
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0]["type"], "started");
  EXPECT_EQ(messages[1]["text"], "/ro");
  EXPECT_EQ(messages[2]["text"], "ot\n");
  EXPECT_EQ(messages[3]["status"], "Completed");

  (*ws)->Send(json{{"type", "close"}}.dump());
  auto closed = ReadUntil(**ws, "closed");
  ASSERT_EQ(closed.size(), 1u);
  auto end = (*ws)->WaitPop(std::chrono::seconds(5));
  ASSERT_TRUE(end);
  EXPECT_EQ(end->kind, WebSocketEvent::Kind::kClosed);
  EXPECT_FALSE((*ws)->TryPop());
}

TEST(WebSocketClientTest, RefusalCarriesTheServersError) {
  FakeLiveServer server;
  server.refuse = true;
  WebSocketRefusal refusal;
  auto ws = WebSocketClient::Connect(server.Options(), "/api/machines/m-1/liveresponse", &refusal);
  ASSERT_FALSE(ws.ok());
  EXPECT_EQ(ws.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ws.status().message(),
            "ActiveRequestAlreadyExists: a live response session is already open on this device "
            "(HTTP 400)");
  EXPECT_EQ(refusal.http_status, 400);
}

TEST(WebSocketClientTest, UntrustedServerIsRefused) {
  FakeLiveServer server;
  FakeLiveServer other;  // its CA did not sign `server`'s certificate
  auto ws = WebSocketClient::Connect(server.Options(other.ca_file()), "/api/machines/m-1/liveresponse");
  ASSERT_FALSE(ws.ok());
  EXPECT_EQ(ws.status().code(), StatusCode::kUnauthenticated) << ws.status().ToString();
}

TEST(RefusalMessageTest, FallsBackToTheBody) {
  EXPECT_EQ(RefusalMessage({403, R"({"error":{"message":"viewer role"}})"}), "viewer role (HTTP 403)");
  EXPECT_EQ(RefusalMessage({502, "Bad Gateway\n"}),
            "the server refused the connection (HTTP 502): Bad Gateway");
}

// A non-interactive session: lines from a pipe, output to streams.
struct ScriptRun {
  int exit_code = -1;
  std::string out, err;
};

ScriptRun RunScript(FakeLiveServer& server, const std::string& input, const std::string& download_dir) {
  std::ostringstream out, err;
  CliContext ctx{.out = out, .err = err};
  ctx.flag_server = server.Url();
  ctx.flag_token = "tok-1";
  ctx.flag_ca = server.ca_file();
  auto ws = WebSocketClient::Connect(server.Options(), "/api/machines/m-1/liveresponse");
  if (!ws.ok()) return {-2, "", ws.status().ToString()};
  int fds[2];
  if (::pipe(fds) != 0) return {};
  [[maybe_unused]] ssize_t n = ::write(fds[1], input.data(), input.size());
  ::close(fds[1]);
  int code = RunLiveSession(ctx, **ws, {.input_fd = fds[0], .interactive = false,
                                        .download_dir = download_dir, .handle_signals = false});
  ::close(fds[0]);
  return {code, out.str(), err.str()};
}

std::vector<std::string> SentLines(FakeLiveServer& server) {
  std::vector<std::string> lines;
  for (const json& m : server.Received()) {
    lines.push_back(m.value("type", "") + (m.contains("line") ? " " + m.value("line", "") : ""));
  }
  return lines;
}

// The download and digest check `quell live` (getfile) and `quell machine collect` share.
TEST(DownloadVerifiedTest, SavesAMatchingFileAndRemovesOneThatDoesNotMatch) {
  FakeLiveServer server;
  testing::TempDir dir;
  std::ostringstream out, err;
  CliContext ctx{.out = out, .err = err};
  const ApiClient client(server.Options());
  using Outcome = VerifiedDownload::Outcome;

  VerifiedDownload saved =
      DownloadVerified(ctx, client, LinkTarget(server.Url() + "/dl/blob?sig=x"), dir / "a",
                       "downloading", Sha256Hex(kFileData));
  ASSERT_EQ(saved.outcome, Outcome::kSaved) << saved.error;
  EXPECT_EQ(saved.hashes.sha256, Sha256Hex(kFileData));
  EXPECT_EQ(saved.hashes.size, kFileData.size());
  EXPECT_EQ(ReadFile(dir / "a").value(), kFileData);

  VerifiedDownload bad = DownloadVerified(ctx, client, "/dl/blob?sig=x", dir / "b", "downloading",
                                          Sha256Hex("something else"));
  EXPECT_EQ(bad.outcome, Outcome::kDigestMismatch);
  EXPECT_FALSE(std::filesystem::exists(dir / "b"));

  VerifiedDownload refused =
      DownloadVerified(ctx, client, "/dl/gone", dir / "c", "downloading", Sha256Hex(kFileData));
  EXPECT_EQ(refused.outcome, Outcome::kRefused);
  EXPECT_EQ(refused.error, "download refused: no such route (HTTP 404)");
  EXPECT_FALSE(std::filesystem::exists(dir / "c"));
}

TEST(LiveSessionScriptTest, RunsEachLineInTurnAndSavesFetchedFiles) {
  FakeLiveServer server;
  testing::TempDir downloads;
  std::ofstream(downloads / "x") << "already here";
  ScriptRun run = RunScript(server, "# a comment\n\npwd\nbogus\ngetfile ../../x\nscan &\npwd", downloads.path());
  EXPECT_EQ(run.exit_code, 1) << run.err;  // bogus failed
  EXPECT_EQ(SentLines(server), (std::vector<std::string>{"command pwd", "command bogus",
                                                         "command getfile ../../x",
                                                         "command scan &", "command pwd", "close"}));
  EXPECT_NE(run.out.find("/root\n"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("error: Failed: unknown command: bogus\n"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find("[4] Completed\n"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("session closed: ended by the client"), std::string::npos) << run.err;
  // The remote name's last component only, next to (not over) the existing file.
  std::ifstream saved(downloads / "x.1");
  std::stringstream contents;
  contents << saved.rdbuf();
  EXPECT_EQ(contents.str(), kFileData);
  std::ifstream kept(downloads / "x");
  std::stringstream old;
  old << kept.rdbuf();
  EXPECT_EQ(old.str(), "already here");
  EXPECT_NE(run.out.find("saved " + (downloads / "x.1") + " (21 B, sha256 " + Sha256Hex(kFileData)),
            std::string::npos)
      << run.out;
}

TEST(LiveSessionScriptTest, ExitsZeroWhenAllCompleted) {
  FakeLiveServer server;
  testing::TempDir downloads;
  ScriptRun run = RunScript(server, "pwd\nexit\npwd\n", downloads.path());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(SentLines(server), (std::vector<std::string>{"command pwd", "close"}));
  EXPECT_EQ(run.out, "/root\n");
}

TEST(LiveSessionScriptTest, FgWaitsForTheCommandItBringsBack) {
  FakeLiveServer server;
  testing::TempDir downloads;
  ScriptRun run = RunScript(server, "slow &\nfg 1\npwd\n", downloads.path());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  // pwd's output comes after command 1's: the loop waited for 1's done before sending pwd.
  EXPECT_EQ(run.out, "late output\n/root\n");
  EXPECT_NE(run.err.find("[1] started in the background"), std::string::npos) << run.err;
}

TEST(LiveSessionScriptTest, ServerEndingTheSessionExitsTwo) {
  FakeLiveServer server;
  server.idle_close = true;
  testing::TempDir downloads;
  ScriptRun run = RunScript(server, "pwd\npwd\n", downloads.path());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("session closed: idle timeout (30 min)"), std::string::npos) << run.err;
}

bool Eventually(const std::function<bool()>& condition);

// SIGINT (Ctrl-C in a terminal that runs a script) cancels the running command instead of
// killing the CLI; the session then ends normally.
TEST(LiveSessionScriptTest, SigintCancelsTheRunningCommand) {
  FakeLiveServer server;
  testing::TempDir downloads;
  std::ostringstream out, err;
  CliContext ctx{.out = out, .err = err};
  auto ws = WebSocketClient::Connect(server.Options(), "/api/machines/m-1/liveresponse");
  ASSERT_TRUE(ws.ok()) << ws.status().ToString();
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ASSERT_EQ(::write(fds[1], "sleep\n", 6), 6);
  ::close(fds[1]);
  std::thread interrupter([&server] {
    if (Eventually([&server] { return !server.Received().empty(); })) ::kill(::getpid(), SIGINT);
  });
  int code = RunLiveSession(ctx, **ws, {.input_fd = fds[0], .interactive = false,
                                        .download_dir = downloads.path(), .handle_signals = true});
  interrupter.join();
  ::close(fds[0]);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(SentLines(server), (std::vector<std::string>{"command sleep", "cancel", "close"}));
  EXPECT_NE(err.str().find("error: Cancelled: cancelled by the user"), std::string::npos) << err.str();
}

bool Eventually(const std::function<bool()>& condition) {
  for (int i = 0; i < 500; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// The interactive loop on a pseudo-terminal: keys typed on its master side.
TEST(LiveSessionTerminalTest, EditsSendsCancelsAndRestoresTheTerminal) {
  FakeLiveServer server;
  testing::TempDir dir;
  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  int slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(slave, 0);
  termios before{};
  ASSERT_EQ(::tcgetattr(slave, &before), 0);
  ASSERT_TRUE(before.c_lflag & ECHO);

  std::ostringstream out, err;
  CliContext ctx{.out = out, .err = err};
  auto ws = WebSocketClient::Connect(server.Options(), "/api/machines/m-1/liveresponse");
  ASSERT_TRUE(ws.ok()) << ws.status().ToString();
  const std::string history = dir / "history";
  int code = -1;
  std::thread session([&] {
    code = RunLiveSession(ctx, **ws, {.input_fd = slave, .interactive = true,
                                      .history_file = history, .download_dir = dir.path(),
                                      .handle_signals = false});
  });
  auto type = [&](const std::string& keys) {
    ASSERT_EQ(::write(master, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  };
  // On a failed assertion: end the session so the thread can be joined.
  struct Joiner {
    std::thread& thread;
    int master;
    ~Joiner() {
      if (!thread.joinable()) return;
      [[maybe_unused]] ssize_t n = ::write(master, "\x03\x04", 2);
      thread.join();
    }
  } joiner{session, master};
  ASSERT_TRUE(Eventually([&] {
    termios now{};
    return ::tcgetattr(slave, &now) == 0 && !(now.c_lflag & ECHO);
  }));
  auto sent = [&](size_t n) { return [&server, n] { return server.Received().size() >= n; }; };
  // "pwe", Backspace, "d": the edited line is sent. Then "sleep", which runs until Ctrl-C.
  type("pwe\x7f" "d\r");
  ASSERT_TRUE(Eventually(sent(1)));
  type("sleep\r");
  ASSERT_TRUE(Eventually(sent(2)));
  type("\x03");  // cancels the running command; the session stays
  ASSERT_TRUE(Eventually(sent(3)));
  // Up-arrow twice recalls "pwd"; Enter sends it again; then Ctrl-D ends the session.
  type("\x1b[A\x1b[A\r");
  ASSERT_TRUE(Eventually(sent(4)));
  type("\x04");
  session.join();

  EXPECT_EQ(code, 0) << err.str();
  EXPECT_EQ(SentLines(server), (std::vector<std::string>{"command pwd", "command sleep",
                                                         "cancel", "command pwd", "close"}));
  EXPECT_NE(err.str().find("error: Cancelled: cancelled by the user"), std::string::npos) << err.str();
  EXPECT_NE(out.str().find("web-1:/root$ "), std::string::npos) << out.str();
  auto saved = ReadFile(history);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(*saved, "pwd\nsleep\npwd\n");
  termios after{};
  ASSERT_EQ(::tcgetattr(slave, &after), 0);
  EXPECT_EQ(after.c_lflag, before.c_lflag);
  EXPECT_EQ(after.c_iflag, before.c_iflag);
  ::close(slave);
  ::close(master);
}

}  // namespace
}  // namespace quell::cli
