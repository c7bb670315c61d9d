// The command line of an interactive live response session (docs/operations.md, "Live response sessions"):
// how a line becomes words, and the table of commands a session knows. Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "server/store/store.h"

namespace quell::server::live {

inline constexpr size_t kMaxLineBytes = 8 << 10;

struct ParsedLine {
  std::vector<std::string> argv;      // argv[0] is the command name; never empty
  bool background = false;            // a trailing `&` word
  std::string output_format = "table";  // "table" | "json" (`-output json|table`)
};

// Words split on blanks (space, tab); '...' quotes literally, "..." quotes with the escapes
// backslash-quote and backslash-backslash only; quoted and unquoted parts next to each other
// join into one word, so "" is an empty word. An unquoted trailing `&` word means background; an unquoted
// `-output json|table` after the command name sets the format. Both are removed.
// InvalidArgument for an empty line, an unbalanced quote, a line over kMaxLineBytes, a
// `-output` without json/table after it, or a NUL byte.
Result<ParsedLine> ParseLine(std::string_view line);

// The characters `run` refuses in its arguments (a shell would act on them; the agent's
// script_args.h refuses the same): ; & | ! $ ` < > newline, carriage return, NUL.
// InvalidArgument naming the first such character and the argument it is in.
Status CheckRunArguments(const std::vector<std::string>& args);

enum class CommandSide { kServer, kAgent };

struct CommandSpec {
  std::string_view name;
  CommandSide side = CommandSide::kAgent;
  Role role = Role::kResponder;      // the least role that may run it
  uint32_t time_limit_seconds = 0;   // agent commands: sent to the agent; 0 for server ones
  std::string_view usage;            // "getfile <path>"
  std::string_view help;             // one or two sentences
};

// Every command, in help order.
const std::vector<CommandSpec>& Commands();
// nullptr when unknown (names are case-sensitive, like a shell).
const CommandSpec* FindCommand(std::string_view name);

}  // namespace quell::server::live
