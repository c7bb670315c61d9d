// Enrollment: a one-time token and a CSR become a device record and a device certificate.
// Pure server logic over the Store and the CA, so it is tested without gRPC.
#pragma once

#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "server/pki/certificate_authority.h"
#include "server/store/store.h"

namespace quell::server {

struct EnrollmentRequest {
  std::string token;     // the secret as the agent has it
  std::string csr_pem;
  Device inventory;      // inventory fields only; ids and times are set here
};

struct EnrollmentResult {
  std::string device_id;
  std::string certificate_pem;
  std::string ca_certificate_pem;
};

// Consumes the token (PermissionDenied when unknown, used up or expired — one message for
// all three, so a caller learns nothing about which tokens exist), issues a certificate
// with CN = a new device id, stores the device and audits the enrollment.
Result<EnrollmentResult> EnrollDevice(Store& store, const CertificateAuthority& ca,
                                      const Clock& clock, const EnrollmentRequest& request);

// Creates an enrollment token usable `uses` times until now + ttl; returns its secret.
Result<std::string> CreateEnrollmentToken(Store& store, const Clock& clock, int uses,
                                          UnixMillis ttl_ms);

}  // namespace quell::server
