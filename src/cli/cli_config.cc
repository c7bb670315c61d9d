#include "cli/cli_config.h"

#include <nlohmann/json.hpp>

namespace quell::cli {

Result<CliSettings> ResolveCliSettings(const CliSettingsInputs& in) {
  auto env = [&](const char* name) { return in.getenv(name).value_or(""); };
  CliSettings s{.server = in.flag_server, .token = in.flag_token, .ca_file = in.flag_ca,
                .source = "flags"};
  if (s.server.empty()) s.server = env("QUELL_SERVER");
  if (s.token.empty()) s.token = env("QUELL_TOKEN");
  if (s.ca_file.empty()) s.ca_file = env("QUELL_CA");

  std::vector<std::string> candidates;
  if (std::string explicit_file = env("QUELL_CONFIG"); !explicit_file.empty()) {
    candidates.push_back(explicit_file);
  } else {
    candidates.push_back("var/cli.json");
    if (!in.home.empty()) candidates.push_back(in.home + "/.config/quell/cli.json");
  }
  if (s.server.empty() || s.token.empty() || s.ca_file.empty()) {
    for (const std::string& path : candidates) {
      Result<std::string> text = in.read_file(path);
      if (!text.ok()) {
        if (text.status().code() == StatusCode::kNotFound && path != env("QUELL_CONFIG")) continue;
        return text.status().WithContext("reading CLI config " + path);
      }
      nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
      if (!j.is_object()) return InvalidArgument(path + " is not a JSON object");
      auto field = [&](const char* key) {
        auto it = j.find(key);
        return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      if (s.server.empty()) s.server = field("server");
      if (s.token.empty()) s.token = field("token");
      if (s.ca_file.empty()) s.ca_file = field("ca");
      s.source = path;
      break;
    }
  }
  if (s.server.empty() || s.token.empty()) {
    std::string looked;
    for (const auto& c : candidates) looked += " " + c;
    return InvalidArgument(
        "no server/token configured: pass --server and --token, set QUELL_SERVER and "
        "QUELL_TOKEN, or write a config file (looked at:" + looked + ")");
  }
  return s;
}

}  // namespace quell::cli
