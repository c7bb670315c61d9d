#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace quell {

std::shared_ptr<spdlog::logger> Logger(const std::string& component) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = spdlog::stderr_color_mt(component);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  logger->set_level(spdlog::get_level());
  return logger;
}

bool SetLogLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::set_level(parsed);
  spdlog::apply_all([parsed](std::shared_ptr<spdlog::logger> l) { l->set_level(parsed); });
  return true;
}

}  // namespace quell
