// The command line of quell-sandbox, parsed apart from running anything (unit-tested).
//
//   quell-sandbox --sample PATH --report OUT.json [--timeout-seconds 120] [--memory-mb 512]
//                 [--pids 128] [--cpus 1.0] [--file-name NAME]
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/sandbox_runner.h"

namespace quell::sandbox {

struct SandboxArgs {
  SandboxOptions options;
  std::string report_path;
  bool help = false;  // --help / -h: print kSandboxUsage and exit 0
};

extern const char kSandboxUsage[];

// Parses argv[1..]. "--name value" and "--name=value" both work. InvalidArgument names the
// offending option; unknown options and missing --sample/--report are errors.
Result<SandboxArgs> ParseSandboxArgs(const std::vector<std::string>& args);

}  // namespace quell::sandbox
