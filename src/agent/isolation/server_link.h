// The two network look-ups isolation needs: where the server is, and whether it can still
// be reached. Both act in the calling thread's network namespace.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell::agent {

// IPv4 and IPv6 literals for `host` (a name or a literal), deduplicated, sorted.
// Unavailable when it does not resolve.
Result<std::vector<std::string>> ResolveServerAddresses(const std::string& host);

// Opens and closes a fresh TCP connection to each address in turn, each bounded by
// `timeout`; Ok as soon as one connects, otherwise Unavailable naming every failure.
Status ProbeTcpLink(const std::vector<std::string>& addresses, uint16_t port,
                    std::chrono::milliseconds timeout);

}  // namespace quell::agent
