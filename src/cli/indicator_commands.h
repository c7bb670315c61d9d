// quell indicators add | list | rm | import, and quell machine set-group. The import file
// parsers are pure and unit-tested (indicator_commands_test.cc).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "cli/cli_context.h"

namespace quell::cli {

// Indicators read from an import file, each with the line it starts on (for messages).
struct IndicatorFile {
  std::vector<nlohmann::json> indicators;  // objects in the shape of the import API's items
  std::vector<int> lines;                  // 1-based; 0 for JSON files
  std::vector<std::string> errors;         // "line 7: ..." — the file is refused if any
};

// Defender's CSV template: a header row naming columns (any order, case-insensitive)
// IndicatorType, IndicatorValue, ExpirationTime, Action, Severity, Title, Description,
// RecommendedActions, RbacGroups (';'-separated), GenerateAlert. RFC 4180 quoting; empty
// cells are left out; blank lines are skipped.
IndicatorFile ParseIndicatorCsv(std::string_view text);

// {"Indicators": [...]} or a bare array of indicator objects.
IndicatorFile ParseIndicatorJson(std::string_view text);

// JSON when the first non-blank character is '{' or '[', CSV otherwise.
IndicatorFile ParseIndicatorFile(std::string_view text);

// `quell indicators ...`; `quell machine set-group` REQUIRES AddMachineCommands ran first.
void AddIndicatorCommands(CLI::App& app, CliContext& ctx, int& exit_code);

}  // namespace quell::cli
