// Runs quell-sandbox as a child process and follows it: its stderr lines are progress, its
// exit status says whether the analysis completed. The sandbox runs as a separate process so
// that nothing a sample does can reach the server's memory, and so that a crash of the
// supervisor is a failed analysis, not a dead server.
#pragma once

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quell::server {

struct SandboxCommand {
  std::string binary;              // quell-sandbox
  std::vector<std::string> args;   // after argv[0]
  // Killed (SIGTERM, then SIGKILL after 10 s) when it runs longer than this.
  std::chrono::seconds deadline{600};
};

struct SandboxExit {
  int exit_code = -1;          // -1 when a signal ended it
  int signal = 0;
  std::string last_lines;      // the last stderr lines (for error messages), at most 4 KiB
};

// Starts the command with stdin from /dev/null and stdout and stderr into one pipe, calls
// `on_line` for every line it writes, and returns how it ended. `stop` (server shutdown)
// terminates it the same way the deadline does. Internal when it cannot be started.
Result<SandboxExit> RunSandboxCommand(const SandboxCommand& command,
                                      const std::function<void(std::string_view line)>& on_line,
                                      std::stop_token stop);

}  // namespace quell::server
