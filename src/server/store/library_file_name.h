// The rule for live response library file names. They become file names on devices
// (<state_dir>/live/files/<name>), so they are held to a plain, portable set: 1-128 letters,
// digits, '-', '_' and '.', not starting with '.', without "..". Used by every door a name
// comes in by: the library upload, runliveresponse, and the interactive session's putfile/run.
#pragma once

#include <string_view>

#include "common/status.h"

namespace quell::server {

// Ok, or InvalidArgument saying what is wrong with `name` (shown shortened when long).
Status ValidateLibraryFileName(std::string_view name);

}  // namespace quell::server
