#include "server/gateway/device_identity.h"

#include "common/pki.h"

namespace quell::server {

Result<std::string> AuthenticateDevice(const grpc::ServerContextBase& context, Store& store) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) {
    return Unauthenticated("a device certificate is required; enroll first");
  }
  auto names = auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  auto pems = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (names.empty() || pems.empty()) return Unauthenticated("the certificate has no subject");
  std::string device_id(names.front().data(), names.front().size());
  Result<pki::CertificateInfo> cert =
      pki::InspectCertificate(std::string(pems.front().data(), pems.front().size()));
  if (!cert.ok()) return Unauthenticated("unreadable client certificate");
  Result<Device> device = store.GetDevice(device_id);
  if (!device.ok()) return Unauthenticated("unknown device " + device_id);
  if (device->offboarded) return Unauthenticated("device " + device_id + " is offboarded");
  if (device->cert_serial_hex != cert->serial_hex) {
    return Unauthenticated("the certificate of device " + device_id + " has been replaced");
  }
  return device_id;
}

grpc::Status ToGrpcStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return grpc::Status::OK;
    case StatusCode::kUnauthenticated: return {grpc::StatusCode::UNAUTHENTICATED, s.message()};
    case StatusCode::kPermissionDenied: return {grpc::StatusCode::PERMISSION_DENIED, s.message()};
    case StatusCode::kInvalidArgument: return {grpc::StatusCode::INVALID_ARGUMENT, s.message()};
    case StatusCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, s.message()};
    case StatusCode::kNotFound: return {grpc::StatusCode::NOT_FOUND, s.message()};
    case StatusCode::kResourceExhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, s.message()};
    case StatusCode::kUnavailable: return {grpc::StatusCode::UNAVAILABLE, s.message()};
    default: return {grpc::StatusCode::INTERNAL, "internal error"};
  }
}

}  // namespace quell::server
