// Enrollment: the one-time exchange of an enrollment token and a CSR for a device identity.
// The private key is made here and never leaves the host.
#pragma once

#include <chrono>
#include <string>

#include "agent/channel/endpoint.h"
#include "agent/state/identity_store.h"
#include "common/status.h"
#include "quell/v1/agent.pb.h"

namespace quell::agent {

// One enrollment attempt. Unauthenticated/PermissionDenied/InvalidArgument mean the token was
// refused (retrying the same token will not help until an operator fixes it); Unavailable and
// DeadlineExceeded are transient.
Result<Identity> Enroll(const ServerEndpoint& endpoint, const std::string& enrollment_token,
                        const quell::v1::Inventory& inventory,
                        std::chrono::milliseconds timeout = std::chrono::seconds(15));

}  // namespace quell::agent
