// Where the CLI finds its server, token and CA: flags first, then QUELL_SERVER /
// QUELL_TOKEN / QUELL_CA, then a JSON config file ({"server","token","ca"}) named by
// QUELL_CONFIG, else ./var/cli.json (written by `make run`), else ~/.config/quell/cli.json.
// A relative "ca" in a config file is relative to the directory of the file's parent
// project (./var/cli.json's "var/server/pki/ca.pem" resolves against the current directory).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/status.h"

namespace quell::cli {

struct CliSettings {
  std::string server;
  std::string token;
  std::string ca_file;
  std::string source;  // where the settings came from, for error messages
};

struct CliSettingsInputs {
  std::string flag_server, flag_token, flag_ca;
  std::function<std::optional<std::string>(const char*)> getenv;
  std::function<Result<std::string>(const std::string&)> read_file;  // NotFound if absent
  std::string home;
};

// InvalidArgument when no server or token can be found, saying where it looked.
Result<CliSettings> ResolveCliSettings(const CliSettingsInputs& in);

}  // namespace quell::cli
