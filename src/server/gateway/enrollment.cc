#include "server/gateway/enrollment.h"

#include <nlohmann/json.hpp>

#include "common/hash.h"
#include "common/ids.h"
#include "common/logging.h"

namespace quell::server {

Result<EnrollmentResult> EnrollDevice(Store& store, const CertificateAuthority& ca,
                                      const Clock& clock, const EnrollmentRequest& request) {
  if (request.token.empty()) return PermissionDenied("an enrollment token is required");
  std::string device_id = NewUuid();
  QUELL_ASSIGN_OR_RETURN(pki::IssuedCertificate cert,
                         ca.IssueDeviceCertificate(request.csr_pem, device_id));
  // The CSR is checked before the token is spent, so a bad request costs no token.
  Status consumed = store.ConsumeEnrollmentToken(Sha256Hex(request.token), clock.Now());
  if (consumed.code() == StatusCode::kNotFound ||
      consumed.code() == StatusCode::kPermissionDenied) {
    return PermissionDenied("the enrollment token is unknown, used up or expired");
  }
  QUELL_RETURN_IF_ERROR(consumed);

  Device device = request.inventory;
  device.id = device_id;
  device.first_seen = clock.Now();
  device.last_seen = device.first_seen;
  device.cert_serial_hex = cert.serial_hex;
  device.offboarded = false;
  device.isolation = IsolationState::kNotIsolated;
  if (!device.ip_addresses.empty()) device.last_ip_address = device.ip_addresses.front();
  QUELL_RETURN_IF_ERROR(store.CreateDevice(device));
  QUELL_RETURN_IF_ERROR(store.AppendAudit(
      {.time = device.first_seen,
       .actor = "agent:" + device_id,
       .operation = "device.enrolled",
       .target = device_id,
       .comment = "",
       .details_json = nlohmann::json{{"computerDnsName", device.computer_dns_name},
                                      {"certificateSerial", cert.serial_hex}}
                           .dump()}));
  Logger("server.gateway")
      ->info("device={} enrolled as {}", device_id, device.computer_dns_name);
  return EnrollmentResult{device_id, cert.cert_pem, ca.ca_cert_pem()};
}

Result<std::string> CreateEnrollmentToken(Store& store, const Clock& clock, int uses,
                                          UnixMillis ttl_ms) {
  if (uses < 1) return InvalidArgument("an enrollment token needs at least one use");
  if (ttl_ms <= 0) return InvalidArgument("an enrollment token needs a positive lifetime");
  std::string secret = "qe_" + RandomHex(24);
  UnixMillis now = clock.Now();
  QUELL_RETURN_IF_ERROR(store.CreateEnrollmentToken({.id = NewUuid(),
                                                     .secret_sha256 = Sha256Hex(secret),
                                                     .uses_left = uses,
                                                     .expires = now + ttl_ms,
                                                     .created = now}));
  return secret;
}

}  // namespace quell::server
