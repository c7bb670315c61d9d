// Captures what one component's logger writes, at debug level, from construction until
// Stop() or destruction, which restore the logger's sinks and level (also when an ASSERT
// leaves the test early). For tests only.
#pragma once

#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>

#include "common/logging.h"

namespace quell::testing {

class LogCapture {
 public:
  explicit LogCapture(const std::string& component)
      : logger_(Logger(component)),
        level_(logger_->level()),
        sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(captured_)) {
    logger_->sinks().push_back(sink_);
    logger_->set_level(spdlog::level::debug);
  }
  ~LogCapture() { Stop(); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // Detaches (once) and returns all that was captured. Call it after whatever logs has
  // finished (e.g. its threads were joined), so that no line is missed.
  std::string Stop() {
    if (attached_) {
      auto& sinks = logger_->sinks();
      sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
      logger_->set_level(level_);
      attached_ = false;
    }
    return captured_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  spdlog::level::level_enum level_;
  std::ostringstream captured_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  bool attached_ = true;
};

}  // namespace quell::testing
