// What every CLI command works with: the API client, the output mode, and one way to call
// the API that turns error answers into messages a person can act on.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <initializer_list>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/api_client.h"
#include "cli/cli_config.h"

namespace quell::cli {

struct CliContext {
  // Global flags, filled by CLI11.
  std::string flag_server, flag_token, flag_ca;
  bool insecure = false;
  bool json = false;  // --json: print the API's JSON instead of tables
  // Made on first use from the flags, the environment or a config file (cli_config.h).
  std::optional<ApiClient> client;
  std::ostream& out = std::cout;
  std::ostream& err = std::cerr;
};

// Exit codes: 0 success, 1 the API refused (4xx/5xx), 3 the server could not be reached.
constexpr int kExitApiError = 1;
constexpr int kExitTransport = 3;

struct CallResult {
  int exit_code = 0;
  nlohmann::json body;  // the parsed JSON answer when exit_code == 0
};

// The server, token, CA file and TLS choice from the flags, the environment or the config file
// (cli_config.h), for a client of its own (e.g. a WebSocket); an error when not configured.
Result<ApiClientOptions> ResolveClientOptions(const CliContext& ctx);

// The client, created on first use; prints why and returns nullptr when the CLI is not
// configured.
ApiClient* Client(CliContext& ctx);

// Sends the request; on a non-2xx answer prints "error: <message> (HTTP <n> <code>)" to err.
CallResult CallApi(CliContext& ctx, const std::string& method, const std::string& target,
                   const nlohmann::json& body = nullptr);

// "&$filter=<field eq 'value' and ...>" (URL-encoded, quotes doubled) for the terms whose
// value is not empty; "" when there are none.
std::string ODataFilterParameter(const std::vector<std::pair<std::string, std::string>>& terms);

// Percent-encodes a path segment or query value.
std::string UrlEncode(const std::string& text);

// Resolves a machine given by id or by computerDnsName; prints an error and returns ""
// when there is no such machine or the name is ambiguous.
std::string ResolveMachineId(CliContext& ctx, const std::string& id_or_name);

// Waits (polling) until the action reaches a final status, printing each status change.
// Returns 0 when it Succeeded, 1 otherwise.
int WaitForAction(CliContext& ctx, const std::string& action_id, int timeout_seconds);

// POST /api/machines/{id}/<route> with `body` for a machine given by id or name, prints the
// MachineAction (one line, or JSON with --json) and, with `wait`, follows it to its end.
// Returns the exit code.
int RequestMachineAction(CliContext& ctx, const std::string& machine, const std::string& route,
                         const nlohmann::json& body, bool wait, int wait_seconds);
// The one-line form of a MachineAction: "action <id>: <type> <machine> is <status>".
void PrintActionLine(CliContext& ctx, const nlohmann::json& action);

// The string at `key` of a JSON object, or "-" when it is missing or not a string.
std::string Field(const nlohmann::json& object, const char* key);

// Under --json prints `body` indented and returns true; otherwise prints nothing and returns
// false, leaving the human-readable form to the caller.
bool PrintJsonIfAsked(CliContext& ctx, const nlohmann::json& body);

// Prints one "key: value" line for each of `keys` (values as Field gives them).
void PrintFields(CliContext& ctx, const nlohmann::json& body,
                 std::initializer_list<const char*> keys);

// Command groups.
void AddMachineCommands(CLI::App& app, CliContext& ctx, int& exit_code);
void AddActionCommands(CLI::App& app, CliContext& ctx, int& exit_code);
void AddAlertCommands(CLI::App& app, CliContext& ctx, int& exit_code);  // alert_commands.cc
// `quell machine scan`; REQUIRES: AddMachineCommands ran first (adds under `machine`).
void AddScanCommands(CLI::App& app, CliContext& ctx, int& exit_code);  // scan_commands.cc
// `quell machine restrict|unrestrict`; REQUIRES: AddMachineCommands ran first.
void AddRestrictionCommands(CLI::App& app, CliContext& ctx, int& exit_code);  // restriction_commands.cc
// `quell machine quarantine` and `quell file sightings|quarantine`; REQUIRES:
// AddMachineCommands ran first.
void AddQuarantineCommands(CLI::App& app, CliContext& ctx, int& exit_code);  // quarantine_commands.cc
// `quell machine collect` and `quell actions package`; REQUIRES: AddMachineCommands and
// AddActionCommands ran first.
void AddCollectCommands(CLI::App& app, CliContext& ctx, int& exit_code);  // collect_commands.cc

}  // namespace quell::cli
