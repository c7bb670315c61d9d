#include "agent/channel/endpoint.h"

namespace quell::agent {

std::shared_ptr<grpc::Channel> MakeServerChannel(const ServerEndpoint& endpoint,
                                                 const Identity* identity) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = endpoint.ca_pem;
  if (identity != nullptr) {
    tls.pem_private_key = identity->key_pem;
    tls.pem_cert_chain = identity->cert_pem;
  }
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(endpoint.server_name);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(endpoint.keepalive_time.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(endpoint.keepalive_timeout.count()));
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Each channel is used for one session; our own backoff paces reconnects, not gRPC's.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(endpoint.target, grpc::SslCredentials(tls), args);
}

Status FromGrpcStatus(const grpc::Status& status, std::string_view what) {
  if (status.ok()) return Status::Ok();
  std::string message = std::string(what) + ": " + status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT: return InvalidArgument(std::move(message));
    case grpc::StatusCode::NOT_FOUND: return NotFound(std::move(message));
    case grpc::StatusCode::ALREADY_EXISTS: return AlreadyExists(std::move(message));
    case grpc::StatusCode::FAILED_PRECONDITION: return FailedPrecondition(std::move(message));
    case grpc::StatusCode::PERMISSION_DENIED: return PermissionDenied(std::move(message));
    case grpc::StatusCode::UNAUTHENTICATED: return Unauthenticated(std::move(message));
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return ResourceExhausted(std::move(message));
    case grpc::StatusCode::DEADLINE_EXCEEDED: return DeadlineExceeded(std::move(message));
    case grpc::StatusCode::CANCELLED: return Cancelled(std::move(message));
    case grpc::StatusCode::UNAVAILABLE: return Unavailable(std::move(message));
    default: return Internal(std::move(message));
  }
}

}  // namespace quell::agent
