// One spdlog logger per component ("server.gateway", "agent.isolate", ...). Lines about a
// device or an action carry its id as a structured field: "device=<id> action=<id> ...".
// Never log secrets (tokens, keys, passwords).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace quell {

// Returns the logger for `component`, creating it on first use. Thread-safe.
std::shared_ptr<spdlog::logger> Logger(const std::string& component);

// Sets the level of every logger, existing and future: "trace", "debug", "info", "warn",
// "error". Unknown names leave the level unchanged and return false.
bool SetLogLevel(const std::string& level);

}  // namespace quell
