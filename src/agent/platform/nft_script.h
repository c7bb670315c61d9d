// Running an nft script through libnftables, shared by the isolation firewall and the
// indicator IP blocklist.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

struct nft_ctx;

namespace quell::agent {

// Runs `script` as one nft transaction on `ctx` (whose output and error are buffered).
// Returns nft's output; PermissionDenied or Internal with nft's error text. The script is
// read from a memfd: nft 1.0.6 quotes the failing line in errors only for file input.
// REQUIRES: not called concurrently on one ctx.
Result<std::string> RunNftScript(nft_ctx* ctx, std::string_view script);

}  // namespace quell::agent
