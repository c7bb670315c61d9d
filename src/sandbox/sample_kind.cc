#include "sandbox/sample_kind.h"

#include <optional>
#include <string>
#include <vector>

namespace quell::sandbox {
namespace {

constexpr std::string_view kSupported =
    "(deep analysis runs ELF executables and sh, bash, python3 and perl scripts)";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view Basename(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// The kind an interpreter name stands for ("python3.11" -> kPython), or nullopt.
std::optional<SampleKind> KindOfInterpreter(std::string_view name) {
  if (name == "sh" || name == "dash" || name == "ash") return SampleKind::kShell;
  if (name == "bash") return SampleKind::kBash;
  if (name.starts_with("python")) {
    std::string_view version = name.substr(6);
    if (version.empty() || version.starts_with("3")) return SampleKind::kPython;
    return std::nullopt;  // python2 is not installed in the sandbox
  }
  if (name.starts_with("perl")) return SampleKind::kPerl;
  return std::nullopt;
}

// Splits a #! line into words (space or tab separated).
std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

}  // namespace

Result<SampleKind> DetectSampleKind(std::string_view head, std::string_view file_name) {
  if (head.starts_with("\x7f"
                       "ELF"))
    return SampleKind::kElf;
  if (head.starts_with("#!")) {
    std::string_view line = head.substr(2);
    line = line.substr(0, line.find('\n'));
    if (EndsWith(line, "\r")) line.remove_suffix(1);
    std::vector<std::string_view> words = Words(line);
    if (!words.empty()) {
      std::string_view program = Basename(words[0]);
      if (program == "env") {
        // "#!/usr/bin/env -S python3 -u" or "#!/usr/bin/env python3"
        for (size_t i = 1; i < words.size(); ++i) {
          if (words[i].starts_with("-")) continue;
          program = Basename(words[i]);
          break;
        }
      }
      if (auto kind = KindOfInterpreter(program)) return *kind;
    }
    return InvalidArgument("unsupported file type: a script for '" + Printable(line) + "' " +
                           std::string(kSupported));
  }
  if (EndsWith(file_name, ".sh")) return SampleKind::kShell;
  if (EndsWith(file_name, ".bash")) return SampleKind::kBash;
  if (EndsWith(file_name, ".py")) return SampleKind::kPython;
  if (EndsWith(file_name, ".pl")) return SampleKind::kPerl;
  std::string what = head.empty() ? "an empty file" : "neither an ELF executable nor a script";
  return InvalidArgument("unsupported file type: " + Printable(file_name) + " is " + what + " " +
                         std::string(kSupported));
}

std::string_view SampleKindName(SampleKind kind) {
  switch (kind) {
    case SampleKind::kElf:
      return "elf";
    case SampleKind::kShell:
      return "shell";
    case SampleKind::kBash:
      return "bash";
    case SampleKind::kPython:
      return "python";
    case SampleKind::kPerl:
      return "perl";
  }
  return "unknown";
}

std::string_view SampleInterpreter(SampleKind kind) {
  switch (kind) {
    case SampleKind::kElf:
      return "";
    case SampleKind::kShell:
      return "/bin/sh";
    case SampleKind::kBash:
      return "/bin/bash";
    case SampleKind::kPython:
      return "/usr/bin/python3";
    case SampleKind::kPerl:
      return "/usr/bin/perl";
  }
  return "";
}

}  // namespace quell::sandbox
