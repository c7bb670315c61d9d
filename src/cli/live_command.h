// quell live <machine>: an interactive live response session over the server's WebSocket
// (docs/api.md, "Interactive live response", for the protocol).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cli/cli_context.h"
#include "cli/websocket_client.h"

namespace quell::cli {

void AddLiveCommand(CLI::App& app, CliContext& ctx, int& exit_code);  // live_command.cc

struct LiveSessionOptions {
  int input_fd = 0;
  // Interactive: a line editor on input_fd (a terminal, put into raw mode). Otherwise
  // lines are read from input_fd one at a time, each sent after the previous one is done.
  bool interactive = false;
  std::string history_file;        // interactive only; "" = no history file
  std::string download_dir = ".";  // where getfile results are saved
  // SIGINT (cancel the running command), SIGTERM and SIGHUP (end the session) are handled
  // while the session runs; off in tests.
  bool handle_signals = true;
  // Show control bytes in what the device sends as "\xNN" (EscapeControls); on when writing
  // to a terminal.
  bool escape_controls = false;
};

// Runs a session on an open WebSocket until it ends. Output of commands goes to ctx.out,
// messages to ctx.err. Returns the exit code: 0 the session was ended by us and (when not
// interactive) every command Completed; 1 some command did not complete; 2 the server ended
// the session (idle timeout, ...); 3 the connection failed.
int RunLiveSession(CliContext& ctx, WebSocketClient& ws, const LiveSessionOptions& options);

}  // namespace quell::cli
