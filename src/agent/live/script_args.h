// How RunScript's Args string becomes argv: split on whitespace, with '...' and "..." quoting
// and nothing else (no variables, no escapes, no globbing). The script is never run through a
// shell, but the characters a shell would act on are refused anyway, so an Args string means
// the same thing here as a responder reading it expects (and as Defender allows).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quell::agent::live {

inline constexpr size_t kMaxScriptArgsChars = 1024;

// Splits `args` into arguments. Words are separated by spaces and tabs; a quoted part ('...'
// or "...") keeps its whitespace, and adjacent parts join into one word (a"b c" -> "ab c"),
// so "" gives an empty argument. Backslashes are ordinary characters.
// InvalidArgument, naming the character, for any of ; & | ! $ ` < > newline (also carriage
// return and NUL), for an unbalanced quote, or for more than kMaxScriptArgsChars characters.
Result<std::vector<std::string>> SplitScriptArgs(std::string_view args);

}  // namespace quell::agent::live
