#include "server/live/live_line.h"

namespace quell::server::live {

Result<ParsedLine> ParseLine(std::string_view line) {
  if (line.size() > kMaxLineBytes) {
    return InvalidArgument("the line is longer than " + std::to_string(kMaxLineBytes) +
                           " bytes");
  }
  // Anywhere, quoted or not: words become C strings on the device.
  if (line.find('\0') != std::string_view::npos) {
    return InvalidArgument("the line contains a NUL byte");
  }
  struct Word {
    std::string text;
    bool quoted = false;  // any part of it was quoted
  };
  std::vector<Word> words;
  bool in_word = false;
  size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    if (c == ' ' || c == '\t') {
      in_word = false;
      ++i;
      continue;
    }
    if (!in_word) {
      words.emplace_back();
      in_word = true;
    }
    Word& word = words.back();
    if (c == '\'') {
      size_t end = line.find('\'', i + 1);
      if (end == std::string_view::npos) {
        return InvalidArgument("unbalanced quote: a ' is not closed");
      }
      word.text.append(line.substr(i + 1, end - i - 1));
      word.quoted = true;
      i = end + 1;
    } else if (c == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        const char d = line[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
          word.text += line[i + 1];
          i += 2;
          continue;
        }
        word.text += d;
        ++i;
      }
      if (!closed) return InvalidArgument("unbalanced quote: a \" is not closed");
      word.quoted = true;
    } else {
      word.text += c;
      ++i;
    }
  }
  ParsedLine parsed;
  if (!words.empty() && !words.back().quoted && words.back().text == "&") {
    parsed.background = true;
    words.pop_back();
  }
  if (words.empty()) return InvalidArgument("empty command line");
  parsed.argv.push_back(std::move(words[0].text));
  for (size_t w = 1; w < words.size(); ++w) {
    if (!words[w].quoted && words[w].text == "-output") {
      if (w + 1 >= words.size() ||
          (words[w + 1].text != "json" && words[w + 1].text != "table")) {
        return InvalidArgument("-output takes json or table");
      }
      parsed.output_format = words[w + 1].text;
      ++w;
      continue;
    }
    parsed.argv.push_back(std::move(words[w].text));
  }
  return parsed;
}

Status CheckRunArguments(const std::vector<std::string>& args) {
  for (const std::string& arg : args) {
    for (char c : arg) {
      std::string name;
      switch (c) {
        case ';': case '&': case '|': case '!': case '$': case '`': case '<': case '>':
          name = std::string("'") + c + "'";
          break;
        case '\n': name = "newline"; break;
        case '\r': name = "carriage return"; break;
        case '\0': name = "NUL"; break;
        default: continue;
      }
      return InvalidArgument("run arguments may not contain " + name + " (in '" + arg +
                             "'); refused: ; & | ! $ ` < > and newlines");
    }
  }
  return Status::Ok();
}

const std::vector<CommandSpec>& Commands() {
  using enum CommandSide;
  static const std::vector<CommandSpec> commands = {
      {"help", kServer, Role::kResponder, 0, "help [command]", "Lists the commands, or describes one."},
      {"jobs", kServer, Role::kResponder, 0, "jobs", "Background commands of this session and their status."},
      {"fg", kServer, Role::kResponder, 0, "fg <id>",
       "Replays the buffered output of a command and makes it the foreground one (Ctrl-C then cancels it)."},
      {"status", kServer, Role::kResponder, 0, "status [id]",
       "The session (device, started, idle time left, commands, running jobs) or one command."},
      {"library", kServer, Role::kResponder, 0, "library",
       "The live response library files (name, size, sha256, description)."},
      {"scan", kServer, Role::kResponder, 0, "scan [quick|full]",
       "Runs an antivirus scan action on the device and follows it to the end."},
      {"collect", kServer, Role::kResponder, 0, "collect",
       "Collects an investigation package (an action) and follows it to the end."},
      {"isolate", kServer, Role::kAdmin, 0, "isolate [full|selective]",
       "Isolates the device from the network (an Isolate action)."},
      {"release", kServer, Role::kAdmin, 0, "release", "Releases the device from isolation (an Unisolate action)."},
      {"cd", kAgent, Role::kResponder, 120, "cd <dir>", "Changes the session's working directory."},
      {"pwd", kAgent, Role::kResponder, 120, "pwd", "Prints the session's working directory."},
      {"ls", kAgent, Role::kResponder, 120, "ls [path]", "Lists a directory."},
      {"dir", kAgent, Role::kResponder, 120, "dir [path]", "Lists a directory (same as ls)."},
      {"fileinfo", kAgent, Role::kResponder, 120, "fileinfo <path>",
       "Hashes, size, owner, mode, times and owning package of a file."},
      {"findfile", kAgent, Role::kResponder, 300, "findfile <name-or-glob> [dir]", "Finds files by name."},
      {"getfile", kAgent, Role::kResponder, 3600, "getfile <path>",
       "Uploads a file (up to 3 GB) to the server as artifact command-<id> of the session."},
      {"putfile", kAgent, Role::kAdmin, 120, "putfile <library-file> [-keep]",
       "Puts a library file into the agent's working directory; -keep keeps it across agent restarts."},
      {"processes", kAgent, Role::kResponder, 120, "processes", "Lists processes."},
      {"connections", kAgent, Role::kResponder, 120, "connections", "Lists network connections."},
      {"persistence", kAgent, Role::kResponder, 120, "persistence",
       "Lists persistence (systemd, cron, rc, profiles, ...)."},
      {"services", kAgent, Role::kResponder, 120, "services", "Lists services."},
      {"scheduledtasks", kAgent, Role::kResponder, 120, "scheduledtasks", "Lists cron and at jobs and timers."},
      {"run", kAgent, Role::kAdmin, 600, "run <library-script> [args...]",
       "Runs a library script (10-minute limit); arguments may not contain ; & | ! $ ` < >."},
      {"remediate", kAgent, Role::kAdmin, 120, "remediate file|process|service|cron <target>",
       "Removes a file, process, service or cron entry, recording what it removed."},
      {"undo", kAgent, Role::kAdmin, 120, "undo [remediation-id]",
       "Restores the last (or the given) remediation."},
  };
  return commands;
}

const CommandSpec* FindCommand(std::string_view name) {
  for (const CommandSpec& spec : Commands()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

}  // namespace quell::server::live
