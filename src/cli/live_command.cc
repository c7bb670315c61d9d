// The session loop of `quell live`. One thread (this one) owns the terminal and the session
// state; the WebSocketClient's network thread only queues the server's messages. The loop
// poll()s stdin, the client's event fd and a self-pipe fed by signal handlers, so a message
// from the server, a key press and Ctrl-C are each handled as soon as they arrive.
#include "cli/live_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/downloads.h"
#include "cli/line_editor.h"
#include "cli/live_render.h"
#include "common/unique_fd.h"

namespace quell::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr auto kCloseWait = std::chrono::seconds(5);
constexpr int kExitServerClosed = 2;
constexpr size_t kMaxTypeahead = 64 << 10;

// --- signals: a self-pipe written by the handlers ---

int g_signal_write_fd = -1;

extern "C" void OnSignal(int signal_number) {
  const int saved_errno = errno;
  const char byte = static_cast<char>(signal_number);
  if (g_signal_write_fd >= 0) [[maybe_unused]] ssize_t n = ::write(g_signal_write_fd, &byte, 1);
  errno = saved_errno;
}

// Installs the handlers for the life of the session and puts the previous ones back after.
class SignalPipe {
 public:
  SignalPipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return;
    read_.Reset(fds[0]);
    write_.Reset(fds[1]);
    g_signal_write_fd = write_.get();
    struct sigaction action {};
    action.sa_handler = OnSignal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < std::size(kSignals); ++i) ::sigaction(kSignals[i], &action, &saved_[i]);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(SIGPIPE, &ignore, &saved_pipe_);
    installed_ = true;
  }
  ~SignalPipe() {
    if (!installed_) return;
    for (size_t i = 0; i < std::size(kSignals); ++i) ::sigaction(kSignals[i], &saved_[i], nullptr);
    ::sigaction(SIGPIPE, &saved_pipe_, nullptr);
    g_signal_write_fd = -1;
  }
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  int read_fd() const { return read_.get(); }

 private:
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
  UniqueFd read_, write_;
  struct sigaction saved_[std::size(kSignals)] {};
  struct sigaction saved_pipe_ {};
  bool installed_ = false;
};

class LiveSession {
 public:
  LiveSession(CliContext& ctx, WebSocketClient& ws, const LiveSessionOptions& options)
      : ctx_(ctx), ws_(ws), options_(options), editor_(history_) {}

  int Run();

 private:
  // Events.
  void OnServerText(const std::string& text);
  void OnSession(const json& message);
  void OnDone(const json& message);
  void OnSignal(int signal_number);
  void OnInputBytes(const char* data, size_t size);
  void OnKey(char byte);
  void OnInputEof();
  void PumpScriptLines();

  // Actions.
  void HandleLine(const std::string& line);
  void SendCommand(const std::string& line);
  void SendCancel();
  void BeginClose();
  void FinishCommand();
  void FetchArtifact(int64_t command_id, const json& done);

  // Printing. Notice() prints a whole line without breaking the line being edited.
  void Notice(const std::string& line, bool to_err);
  void WriteOutput(const std::string& text);
  void ShowPrompt();
  void Redraw();
  void EndPartialLine();

  bool WantInput() const;

  CliContext& ctx_;
  WebSocketClient& ws_;
  const LiveSessionOptions& options_;
  LineHistory history_;
  LineEditor editor_;

  bool have_session_ = false;
  std::string session_id_, host_, cwd_;
  bool waiting_ = false;               // a command was sent and has not finished
  std::optional<int64_t> foreground_;  // its id, once "started" said it
  std::string last_line_;              // the line sent last (for a getfile refused before "started")
  std::map<int64_t, std::string> lines_;
  bool all_completed_ = true;
  bool input_eof_ = false;
  std::string script_buffer_;  // non-interactive: bytes read but not yet sent as lines
  std::string typeahead_;      // interactive: keys typed while a command ran
  bool prompt_shown_ = false;
  bool at_line_start_ = true;  // whether ctx.out's last byte ended a line
  bool close_sent_ = false;
  Clock::time_point close_deadline_{};
  std::optional<int> exit_code_;
  bool history_warned_ = false;
};

bool LiveSession::WantInput() const {
  if (!have_session_ || close_sent_ || input_eof_ || exit_code_) return false;
  if (options_.interactive) return true;  // also while a command runs: Ctrl-C, type-ahead
  return !waiting_;
}

int LiveSession::Run() {
  std::optional<RawTerminal> raw;
  if (options_.interactive) {
    if (!options_.history_file.empty()) {
      Status loaded = history_.Load(options_.history_file);
      if (!loaded.ok()) ctx_.err << "warning: history not loaded: " << loaded.message() << "\n";
    }
    Result<RawTerminal> entered = RawTerminal::Enter(options_.input_fd);
    if (!entered.ok()) {
      ctx_.err << "error: cannot set up the terminal: " << entered.status().message() << "\n";
      ws_.Send(json{{"type", "close"}}.dump());
      return kExitApiError;
    }
    raw.emplace(std::move(*entered));
  }
  std::optional<SignalPipe> signals;
  if (options_.handle_signals) signals.emplace();

  while (!exit_code_) {
    pollfd fds[3];
    nfds_t count = 0;
    fds[count++] = {ws_.notify_fd(), POLLIN, 0};
    const int signal_fd = signals ? signals->read_fd() : -1;
    if (signal_fd >= 0) fds[count++] = {signal_fd, POLLIN, 0};
    const bool want_input = WantInput();
    if (want_input) fds[count++] = {options_.input_fd, POLLIN, 0};
    int timeout_ms = -1;
    if (close_sent_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(close_deadline_ - Clock::now());
      if (left.count() <= 0) {
        EndPartialLine();
        ctx_.err << "warning: the server did not confirm the end of the session\n";
        exit_code_ = all_completed_ || options_.interactive ? 0 : kExitApiError;
        break;
      }
      timeout_ms = static_cast<int>(left.count()) + 1;
    }
    int ready = ::poll(fds, count, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      ctx_.err << "error: poll: " << std::strerror(errno) << "\n";
      exit_code_ = kExitTransport;
      break;
    }
    for (nfds_t i = 0; i < count && !exit_code_; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == ws_.notify_fd()) {
        while (!exit_code_) {
          std::optional<WebSocketEvent> event = ws_.TryPop();
          if (!event) break;
          if (event->kind == WebSocketEvent::Kind::kText) {
            OnServerText(event->text);
            continue;
          }
          EndPartialLine();
          if (close_sent_) {  // we asked for the end; the server just closed without "closed"
            exit_code_ = all_completed_ || options_.interactive ? 0 : kExitApiError;
          } else if (event->kind == WebSocketEvent::Kind::kClosed) {
            Notice("session closed by the server" +
                       (event->text.empty() ? std::string() : ": " + event->text),
                   true);
            exit_code_ = kExitServerClosed;
          } else {
            Notice("error: " + event->text, true);
            exit_code_ = kExitTransport;
          }
        }
      } else if (fds[i].fd == signal_fd) {
        char buf[16];
        ssize_t n = ::read(signal_fd, buf, sizeof buf);
        for (ssize_t j = 0; j < n && !exit_code_; ++j) OnSignal(buf[j]);
      } else if (fds[i].fd == options_.input_fd) {
        char buf[4096];
        ssize_t n = ::read(options_.input_fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
          OnInputEof();
        } else {
          OnInputBytes(buf, static_cast<size_t>(n));
        }
      }
    }
  }
  if (prompt_shown_) {
    ctx_.out << "\r\x1b[K" << std::flush;
    prompt_shown_ = false;
  }
  return *exit_code_;
}

// --- the server's messages ---

void LiveSession::OnServerText(const std::string& text) {
  json message = json::parse(text, nullptr, false);
  if (!message.is_object()) {
    Notice("warning: unreadable message from the server: " + text.substr(0, 200), true);
    return;
  }
  const std::string type = JsonString(message, "type");
  const int64_t id = JsonInt(message, "commandId");
  if (type == "session") {
    OnSession(message);
  } else if (type == "started") {
    lines_[id] = JsonString(message, "line");
    if (waiting_ && !foreground_) {
      if (message.value("background", false)) {
        Notice("[" + std::to_string(id) + "] started in the background", true);
        FinishCommand();
      } else {
        foreground_ = id;
      }
    }
  } else if (type == "output") {
    WriteOutput(JsonString(message, "text"));
  } else if (type == "done") {
    OnDone(message);
  } else if (type == "job") {
    if (JsonString(message, "status") != "Completed") all_completed_ = false;
    Notice(RenderJobLine(message), false);
  } else if (type == "error") {
    Notice(RenderServerError(message), true);
    // The server answers every line with "started" except when another command holds the
    // foreground ("command 3 is still running; ..."): then the line just sent is refused.
    // Other errors (a late cancel: "no command is running") leave the wait as it is.
    if (waiting_ && !foreground_ &&
        JsonString(message, "error").find("still running") != std::string::npos) {
      all_completed_ = false;
      FinishCommand();
    }
  } else if (type == "closed") {
    EndPartialLine();
    Notice(RenderClosed(message), true);
    exit_code_ = !close_sent_ ? kExitServerClosed
                              : (all_completed_ || options_.interactive ? 0 : kExitApiError);
  }
  // Unknown types are ignored: a newer server may add some.
}

void LiveSession::OnSession(const json& message) {
  have_session_ = true;
  session_id_ = JsonString(message, "sessionId");
  host_ = JsonString(message, "computerDnsName", JsonString(message, "machineId", "?"));
  cwd_ = JsonString(message, "cwd", "/");
  const std::string banner = RenderBanner(message);
  ctx_.err << (options_.escape_controls ? EscapeControls(banner) : banner) << std::flush;
  if (options_.interactive) {
    ShowPrompt();
  } else {
    PumpScriptLines();
  }
}

void LiveSession::OnDone(const json& message) {
  const int64_t id = JsonInt(message, "commandId");
  const std::string cwd = JsonString(message, "cwd");
  if (!cwd.empty()) cwd_ = cwd;
  const bool ours = waiting_ && (!foreground_ || *foreground_ == id);
  const std::string error = RenderDoneError(message);
  if (!error.empty()) {
    all_completed_ = false;
    EndPartialLine();
    Notice(ours ? error : "[" + std::to_string(id) + "] " + error, true);
  }
  if (message.contains("artifact") && message["artifact"].is_object()) {
    if (!lines_.count(id) && ours) lines_[id] = last_line_;
    EndPartialLine();
    FetchArtifact(id, message);
  }
  if (!ours) return;
  // `fg <n>` hands the foreground to command n: its replayed output and its done follow.
  auto words = SplitCommandLine(lines_[id]);
  if (JsonString(message, "status") == "Completed" && words && words->size() == 2 &&
      (*words)[0] == "fg") {
    char* end = nullptr;
    const long long target = std::strtoll((*words)[1].c_str(), &end, 10);
    if (end != nullptr && *end == '\0' && target > 0) {
      foreground_ = target;
      return;
    }
  }
  FinishCommand();
}

// --- local input ---

void LiveSession::OnSignal(int signal_number) {
  if (signal_number == SIGINT) {
    if (waiting_) {
      SendCancel();
    } else if (!options_.interactive) {
      BeginClose();
    }
    return;
  }
  BeginClose();  // SIGTERM, SIGHUP
}

void LiveSession::OnInputBytes(const char* data, size_t size) {
  if (!options_.interactive) {
    script_buffer_.append(data, size);
    PumpScriptLines();
    return;
  }
  for (size_t i = 0; i < size && !close_sent_ && !exit_code_; ++i) OnKey(data[i]);
}

void LiveSession::OnKey(char byte) {
  if (waiting_) {
    if (byte == '\x03') {  // Ctrl-C cancels the running command; the session stays
      typeahead_.clear();
      SendCancel();
    } else if (typeahead_.size() < kMaxTypeahead) {
      typeahead_ += byte;
    }
    return;
  }
  switch (editor_.Feed(byte)) {
    case LineEditor::Event::kNone:
      Redraw();
      break;
    case LineEditor::Event::kInterrupt:
      ctx_.out << "^C\n" << std::flush;
      prompt_shown_ = false;
      ShowPrompt();
      break;
    case LineEditor::Event::kEof:
      ctx_.out << "\n" << std::flush;
      prompt_shown_ = false;
      BeginClose();
      break;
    case LineEditor::Event::kSubmit: {
      std::string line = editor_.TakeLine();
      ctx_.out << "\n" << std::flush;
      prompt_shown_ = false;
      if (!options_.history_file.empty()) {
        Status saved = history_.Save(options_.history_file);
        if (!saved.ok() && !history_warned_) {
          history_warned_ = true;
          ctx_.err << "warning: history not saved: " << saved.message() << "\n";
        }
      }
      HandleLine(line);
      if (!waiting_ && !close_sent_) ShowPrompt();
      break;
    }
  }
}

void LiveSession::OnInputEof() {
  input_eof_ = true;
  if (options_.interactive) {
    BeginClose();
    return;
  }
  PumpScriptLines();
}

// Non-interactive: sends the next line once the previous command is over; at the end of
// the input, ends the session.
void LiveSession::PumpScriptLines() {
  if (options_.interactive || !have_session_) return;
  while (!waiting_ && !close_sent_ && !exit_code_) {
    size_t newline = script_buffer_.find('\n');
    std::string line;
    if (newline != std::string::npos) {
      line = script_buffer_.substr(0, newline);
      script_buffer_.erase(0, newline + 1);
    } else if (input_eof_ && !script_buffer_.empty()) {
      line = std::move(script_buffer_);
      script_buffer_.clear();
    } else {
      if (input_eof_) BeginClose();
      return;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    HandleLine(line);
  }
}

void LiveSession::HandleLine(const std::string& raw_line) {
  size_t start = raw_line.find_first_not_of(" \t");
  if (start == std::string::npos) return;
  size_t end = raw_line.find_last_not_of(" \t");
  const std::string line = raw_line.substr(start, end - start + 1);
  if (line.front() == '#') return;
  if (line == "exit" || line == "quit") {
    BeginClose();
    return;
  }
  SendCommand(line);
}

void LiveSession::SendCommand(const std::string& line) {
  ws_.Send(json{{"type", "command"}, {"line", line}}.dump());
  waiting_ = true;
  foreground_.reset();
  last_line_ = line;
}

void LiveSession::SendCancel() {
  ws_.Send(foreground_ ? json{{"type", "cancel"}, {"commandId", *foreground_}}.dump()
                       : json{{"type", "cancel"}}.dump());
  EndPartialLine();
  ctx_.err << "^C cancelling" << (foreground_ ? " command " + std::to_string(*foreground_) : "")
           << "\n" << std::flush;
}

void LiveSession::BeginClose() {
  if (close_sent_) return;
  ws_.Send(json{{"type", "close"}}.dump());
  close_sent_ = true;
  close_deadline_ = Clock::now() + kCloseWait;
}

void LiveSession::FinishCommand() {
  waiting_ = false;
  foreground_.reset();
  if (options_.interactive) {
    if (close_sent_ || exit_code_) return;
    ShowPrompt();
    std::string keys = std::move(typeahead_);
    typeahead_.clear();
    for (size_t i = 0; i < keys.size() && !close_sent_ && !exit_code_; ++i) OnKey(keys[i]);
  } else {
    PumpScriptLines();
  }
}

// getfile: asks for a download link, saves the file under the remote base name in the
// download directory (never over an existing file) and checks its SHA-256.
void LiveSession::FetchArtifact(int64_t command_id, const json& done) {
  const json& artifact = done["artifact"];
  std::optional<std::string> name;
  if (auto remote = GetfilePath(lines_[command_id])) name = SafeBaseName(*remote);
  if (!name) name = SafeBaseName(JsonString(artifact, "name"));
  if (!name) name = "command-" + std::to_string(command_id);

  CallResult link = CallApi(ctx_, "GET",
                            "/api/liveresponse/sessions/" + UrlEncode(session_id_) + "/commands/" +
                                std::to_string(command_id) + "/download");
  if (link.exit_code != 0) {
    all_completed_ = false;
    return;
  }
  const std::string target = LinkTarget(JsonString(link.body, "value"));
  if (target.empty()) {
    Notice("error: the server returned no usable download link", true);
    all_completed_ = false;
    return;
  }
  ApiClient* client = Client(ctx_);
  Result<std::string> path = ReserveDownloadPath(options_.download_dir, *name);
  if (client == nullptr || !path.ok()) {
    if (!path.ok()) Notice("error: cannot save " + *name + ": " + path.status().message(), true);
    all_completed_ = false;
    return;
  }
  const std::string expected = JsonString(link.body, "sha256", JsonString(artifact, "sha256"));
  VerifiedDownload got =
      DownloadVerified(ctx_, *client, target, *path, "downloading " + *name, expected);
  if (got.outcome == VerifiedDownload::Outcome::kDigestMismatch) {
    Notice("error: " + *path + " does not match its SHA-256 " + expected +
               "; it was removed. Fetch it again with getfile.",
           true);
    all_completed_ = false;
    return;
  }
  if (got.outcome != VerifiedDownload::Outcome::kSaved) {
    std::error_code ignored;
    std::filesystem::remove(*path, ignored);  // the file ReserveDownloadPath made
    Notice("error: " + got.error, true);
    all_completed_ = false;
    return;
  }
  Notice("saved " + *path + " (" + HumanSize(got.hashes.size) + ", sha256 " +
             got.hashes.sha256 + ")",
         false);
}

// --- printing ---

void LiveSession::WriteOutput(const std::string& raw_text) {
  if (raw_text.empty()) return;
  const std::string text = options_.escape_controls ? EscapeControls(raw_text) : raw_text;
  if (prompt_shown_) {  // output while the prompt shows (e.g. after fg): keep the line intact
    ctx_.out << "\r\x1b[K";
    prompt_shown_ = false;
    ctx_.out << text;
    at_line_start_ = text.back() == '\n';
    EndPartialLine();
    ShowPrompt();
    return;
  }
  ctx_.out << text << std::flush;
  at_line_start_ = text.back() == '\n';
}

void LiveSession::EndPartialLine() {
  if (!at_line_start_) {
    ctx_.out << "\n" << std::flush;
    at_line_start_ = true;
  }
}

void LiveSession::Notice(const std::string& line, bool to_err) {
  const bool redraw = prompt_shown_;
  if (redraw) {
    ctx_.out << "\r\x1b[K" << std::flush;
    prompt_shown_ = false;
  } else {
    EndPartialLine();
  }
  std::ostream& stream = to_err ? ctx_.err : ctx_.out;
  stream << (options_.escape_controls ? EscapeControls(line) : line) << "\n" << std::flush;
  if (redraw) ShowPrompt();
}

void LiveSession::ShowPrompt() {
  if (!options_.interactive || close_sent_ || exit_code_) return;
  EndPartialLine();
  prompt_shown_ = true;
  Redraw();
}

// The terminal's width, read at every redraw (it may have been resized); 0 when unknown.
size_t TerminalColumns() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) != 0) return 0;
  return size.ws_col;
}

void LiveSession::Redraw() {
  if (!prompt_shown_) return;
  const std::string prompt = RenderPrompt(host_, cwd_);  // both come from the device
  ctx_.out << editor_.Render(options_.escape_controls ? EscapeControls(prompt) : prompt,
                            TerminalColumns())
           << std::flush;
}

// --- the command ---

struct LiveFlags {
  std::string machine;
  std::string history_file;
  std::string download_dir = ".";
};

int RunLive(CliContext& ctx, const LiveFlags& flags) {
  const std::string machine_id = ResolveMachineId(ctx, flags.machine);
  if (machine_id.empty()) return kExitApiError;
  Result<ApiClientOptions> options = ResolveClientOptions(ctx);
  if (!options.ok()) {
    ctx.err << "error: " << options.status().message() << "\n";
    return kExitTransport;
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(flags.download_dir, ec)) {
    ctx.err << "error: --download-dir " << flags.download_dir << " is not a directory\n";
    return kExitApiError;
  }
  Result<std::unique_ptr<WebSocketClient>> ws =
      WebSocketClient::Connect(*options, "/api/machines/" + UrlEncode(machine_id) + "/liveresponse");
  if (!ws.ok()) {
    ctx.err << "error: " << ws.status().message() << "\n";
    return ws.status().code() == StatusCode::kFailedPrecondition ? kExitApiError : kExitTransport;
  }
  LiveSessionOptions session{
      .input_fd = 0,
      .interactive = ::isatty(0) == 1,
      .history_file = flags.history_file.empty() ? DefaultHistoryPath() : flags.history_file,
      .download_dir = flags.download_dir,
      .handle_signals = true,
      .escape_controls = ::isatty(1) == 1 || ::isatty(2) == 1};
  return RunLiveSession(ctx, **ws, session);
}

}  // namespace

int RunLiveSession(CliContext& ctx, WebSocketClient& ws, const LiveSessionOptions& options) {
  LiveSession session(ctx, ws, options);
  return session.Run();
}

void AddLiveCommand(CLI::App& app, CliContext& ctx, int& exit_code) {
  auto flags = std::make_shared<LiveFlags>();
  auto* live = app.add_subcommand(
      "live",
      "Open an interactive live response session on a machine. On a terminal: line editing, "
      "history, Ctrl-C cancels the running command, Ctrl-D or exit ends the session. "
      "Otherwise commands are read from stdin, one per line, each after the previous one "
      "finished; the exit code is 0 when all completed");
  live->add_option("machine", flags->machine, "Machine id or computer name")->required();
  live->add_option("--history-file", flags->history_file,
                   "Where the command history is kept (default ~/.local/state/quell/live_history)");
  live->add_option("--download-dir", flags->download_dir,
                   "Where getfile saves files (never overwriting one)")
      ->capture_default_str();
  live->callback([&ctx, &exit_code, flags] { exit_code = RunLive(ctx, *flags); });
}

}  // namespace quell::cli
