// quell: the command-line client of the Quell REST API.
#include <CLI/CLI.hpp>

#include "cli/cli_context.h"
#include "cli/file_commands.h"
#include "cli/indicator_commands.h"
#include "cli/live_command.h"

int main(int argc, char** argv) {
  quell::cli::CliContext ctx;
  int exit_code = 0;
  CLI::App app{
      "quell: the Quell command line. Server, token and CA come from --server/--token/--ca, "
      "QUELL_SERVER/QUELL_TOKEN/QUELL_CA, or a config file ($QUELL_CONFIG, ./var/cli.json, "
      "~/.config/quell/cli.json)."};
  app.require_subcommand(1);
  app.add_option("--server", ctx.flag_server, "REST API URL, e.g. https://127.0.0.1:8443");
  app.add_option("--token", ctx.flag_token, "API token");
  app.add_option("--ca", ctx.flag_ca, "CA certificate (PEM) the server's certificate chains to");
  app.add_flag("--insecure", ctx.insecure, "Do not verify the server certificate (debugging only)");
  app.add_flag("--json", ctx.json, "Print the API's JSON");
  quell::cli::AddMachineCommands(app, ctx, exit_code);
  quell::cli::AddScanCommands(app, ctx, exit_code);
  quell::cli::AddRestrictionCommands(app, ctx, exit_code);
  quell::cli::AddQuarantineCommands(app, ctx, exit_code);
  quell::cli::AddFileCommands(app, ctx, exit_code);
  quell::cli::AddActionCommands(app, ctx, exit_code);
  quell::cli::AddCollectCommands(app, ctx, exit_code);
  quell::cli::AddAlertCommands(app, ctx, exit_code);
  quell::cli::AddIndicatorCommands(app, ctx, exit_code);
  quell::cli::AddLiveCommand(app, ctx, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
