// quell file collect | show | download | analyze: a file from a device becomes a sample on
// the server, is downloaded as a password-protected zip, or is detonated in quell-sandbox.
// What they print is in file_render.h.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/cli_context.h"

namespace quell::cli {

// REQUIRES: AddQuarantineCommands ran first (adds under its `file` group).
void AddFileCommands(CLI::App& app, CliContext& ctx, int& exit_code);  // file_commands.cc

}  // namespace quell::cli
