// Following a long machine action (a scan, an investigation package) or a download in the
// terminal: a progress bar redrawn in place on a terminal, one line per change otherwise, so
// logs of a non-interactive run stay readable. Drawn on ctx.err; results go to ctx.out.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "cli/cli_context.h"

namespace quell::cli {

// Whether a MachineAction status is final.
bool IsFinalActionStatus(const std::string& status);

// Polls the action once a second, drawing its progress, until it is final or `timeout_seconds`
// pass. Returns 0 with the final action in `action`, or the exit code of what went wrong (a
// timeout is an error: the action continues on the device, as the message says). `what`
// names the action in messages ("scan", "collection").
int FollowActionProgress(CliContext& ctx, const std::string& action_id, int timeout_seconds,
                         const std::string& what, nlohmann::json& action);

// Draws download progress; call with the bytes received and the total (0 when unknown),
// and once with done = true at the end.
class ByteProgress {
 public:
  explicit ByteProgress(CliContext& ctx, std::string label);
  void Update(uint64_t received, uint64_t total);
  void Done();

 private:
  CliContext& ctx_;
  std::string label_;
  bool tty_;
  int last_percent_ = -1;
  uint64_t last_mib_ = UINT64_MAX;
};

}  // namespace quell::cli
