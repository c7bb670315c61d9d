// Compiled YARA rules from rule directories. Move-only; the C handle is destroyed exactly
// once. Scan() may be called from up to YR_MAX_THREADS (32) threads at once.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"

struct YR_RULES;

namespace quell::agent::scan {

// What loading the rule directories found: each problem with file and line, so an operator
// sees all of them at once. A file with errors is left out; the other files still load.
struct YaraLoadReport {
  std::vector<std::string> files;     // rule files compiled in
  std::vector<std::string> problems;  // "path:line: message"
  std::vector<std::string> skipped_dirs;  // configured but missing
};

class YaraRules {
 public:
  YaraRules() = default;
  ~YaraRules();
  YaraRules(YaraRules&& other) noexcept;
  YaraRules& operator=(YaraRules&& other) noexcept;
  YaraRules(const YaraRules&) = delete;
  YaraRules& operator=(const YaraRules&) = delete;

  // Compiles every *.yar / *.yara file directly in each directory of `dirs` (sorted by name;
  // not recursive). Zero rules is not an error: rule_count() == 0.
  static Result<YaraRules> Load(const std::vector<std::string>& dirs, YaraLoadReport* report);

  size_t rule_count() const { return rule_count_; }

  // Names of the rules matching the `len` bytes at `data`, in rule order. Thread-safe.
  Result<std::vector<std::string>> Scan(const void* data, size_t len, int timeout_seconds) const;

 private:
  YR_RULES* rules_ = nullptr;
  size_t rule_count_ = 0;
};

}  // namespace quell::agent::scan
