// Runs one live-response script: an executable with arguments, never through a shell, in its
// own process group, with stdin /dev/null, a minimal environment (PATH, LANG=C.UTF-8,
// HOME=/root), stdout and stderr captured into files, a time limit and cancellation.
//
// Output is captured through pipes that this process reads and copies into the files until
// `max_output_bytes` each, discarding (but still reading) the rest. Chosen over RLIMIT_FSIZE in
// the child because that limit applies to every file the script writes (a script collecting
// a memory image into the working directory would be killed with SIGXFSZ) and because it kills
// the script instead of just cutting its output.
//
// At the time limit or on cancel, the whole process group gets SIGKILL (a descendant that made
// itself a new session with setsid escapes this). When the script exits normally, descendants
// it left running in the background are left alone, and output they write after the script
// exited is not captured.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quell::agent::live {

struct ScriptRunOptions {
  std::string cwd;          // REQUIRES: an existing directory
  std::string stdout_path;  // created or truncated, mode 0600
  std::string stderr_path;
  uint64_t max_output_bytes = 16ull << 20;  // per stream
  std::chrono::milliseconds time_limit{600'000};
  // Told each piece of stdout as it is captured (what the file keeps, in order), on the
  // calling thread, so that a long script's output can be shown while it runs.
  std::function<void(std::string_view)> on_stdout;
};

struct ScriptRunResult {
  std::optional<int> exit_code;  // set when the script exited
  int signal = 0;                // the signal that ended it, when it did not exit
  bool timed_out = false;        // killed at the time limit
  bool cancelled = false;        // killed because `stop` was requested
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::chrono::milliseconds duration{0};
};

// Runs `program` with `args` (argv[0] is `program`). A file without a #! line (execve's
// ENOEXEC) is run by /bin/sh, as a shell would. Returns the result once the script ended;
// a Status only when it could not be started (output files, fork, chdir, execve).
// Thread-safe; safe to call from any thread of a multithreaded process.
Result<ScriptRunResult> RunScript(const std::string& program, const std::vector<std::string>& args,
                                  const ScriptRunOptions& options, std::stop_token stop = {});

}  // namespace quell::agent::live
