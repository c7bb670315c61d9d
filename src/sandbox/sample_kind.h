// What a sample is, decided from its first bytes and its name, and how the sandbox runs it.
// Pure functions: no I/O.
#pragma once

#include <string_view>

#include "common/status.h"

namespace quell::sandbox {

enum class SampleKind { kElf, kShell, kBash, kPython, kPerl };

// How many leading bytes DetectSampleKind looks at (a #! line is at most this long).
inline constexpr size_t kSampleHeadBytes = 256;

// ELF by magic; scripts by their #! line (also through /usr/bin/env), else by the name's
// extension (.sh, .bash, .py, .pl). Anything else: InvalidArgument "unsupported file type:
// ... (deep analysis runs ELF executables and sh, bash, python3 and perl scripts)".
Result<SampleKind> DetectSampleKind(std::string_view head, std::string_view file_name);

// "elf", "shell", "bash", "python", "perl": the report's sample.kind.
std::string_view SampleKindName(SampleKind kind);

// The interpreter a script of `kind` runs under inside the sandbox ("/bin/sh", ...), or
// empty for kElf (executed directly).
std::string_view SampleInterpreter(SampleKind kind);

}  // namespace quell::sandbox
