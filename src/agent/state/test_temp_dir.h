// Transitional alias: TempDir now lives in common/testing/temp_dir.h. Remove this header once
// src/agent/app and src/agent/channel tests include the new one.
#pragma once

#include "common/testing/temp_dir.h"

namespace quell::agent::testing {
using quell::testing::TempDir;
}  // namespace quell::agent::testing
