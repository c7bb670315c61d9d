// Who is calling on the agent port: shared by every agent-facing service (Connect,
// ArtifactTransfer), so each trusts a device by exactly the same rules.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "common/status.h"
#include "server/store/store.h"

namespace quell::server {

// The device id of the caller: the CN of a client certificate that chains to our CA (TLS
// checked that), that is still the device's current certificate (its serial matches the
// stored one), of a device that is not offboarded. Unauthenticated, saying why, otherwise.
Result<std::string> AuthenticateDevice(const grpc::ServerContextBase& context, Store& store);

// A Status as a gRPC status for an agent. Internal errors are not described to the caller.
grpc::Status ToGrpcStatus(const Status& status);

}  // namespace quell::server
