#include "agent/live/script_args.h"

#include <optional>

namespace quell::agent::live {
namespace {

// How a refused character is named in the error: printable ones quoted, the rest by name.
std::optional<std::string> Refused(char c) {
  switch (c) {
    case ';': case '&': case '|': case '!': case '$': case '`': case '<': case '>':
      return "'" + std::string(1, c) + "'";
    case '\n': return std::string("a newline");
    case '\r': return std::string("a carriage return");
    case '\0': return std::string("a NUL character");
    default: return std::nullopt;
  }
}

}  // namespace

Result<std::vector<std::string>> SplitScriptArgs(std::string_view args) {
  if (args.size() > kMaxScriptArgsChars) {
    return InvalidArgument("Args is " + std::to_string(args.size()) + " characters, more than " +
                           std::to_string(kMaxScriptArgsChars));
  }
  for (char c : args) {
    if (auto name = Refused(c)) return InvalidArgument("Args may not contain " + *name);
  }
  std::vector<std::string> out;
  std::string word;
  bool in_word = false;  // distinguishes "no word yet" from an empty quoted word
  char quote = 0;
  for (char c : args) {
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) out.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote != 0) {
    return InvalidArgument(std::string("Args has an unbalanced ") + (quote == '"' ? "\"" : "'") +
                           " quote");
  }
  if (in_word) out.push_back(std::move(word));
  return out;
}

}  // namespace quell::agent::live
