// How the agent reaches quell-server: one TLS configuration shared by enrollment and the
// Connect stream. The server certificate must chain to the pinned CA and carry `server_name`;
// no system trust store is consulted.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "agent/state/identity_store.h"
#include "common/status.h"

namespace quell::agent {

struct ServerEndpoint {
  std::string target;       // "host:port" as in the config
  std::string server_name;  // name checked in the server certificate
  std::string ca_pem;       // the pinned CA
  // HTTP/2 keepalive pings, so a server that vanished silently (a cut link) is noticed
  // within keepalive_time + keepalive_timeout rather than after TCP gives up. The server must
  // accept pings this often (GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS).
  std::chrono::milliseconds keepalive_time{60'000};
  std::chrono::milliseconds keepalive_timeout{20'000};
};

// A fresh channel (its own connection) to the server. With `identity`, the device key and
// certificate are presented (mTLS); without, the channel is only good for Enroll.
std::shared_ptr<grpc::Channel> MakeServerChannel(const ServerEndpoint& endpoint,
                                                 const Identity* identity);

// Maps a gRPC status onto a quell Status, keeping the message.
Status FromGrpcStatus(const grpc::Status& status, std::string_view what);

}  // namespace quell::agent
