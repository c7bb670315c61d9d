// The server's certificate authority: a CA key pair made on first start and kept in
// <data-dir>/pki, the server's TLS certificate, and device certificates issued at enrollment.
// The CA certificate is the trust anchor agents pin and the CLI trusts, so it is never
// replaced implicitly: a lost ca.key means re-enrolling the fleet, and startup says so.
#pragma once

#include <string>
#include <vector>

#include "common/pki.h"
#include "common/status.h"

namespace quell::server {

struct CertificateAuthorityOptions {
  std::string dir;                        // e.g. <data-dir>/pki, created 0700 if missing
  std::vector<std::string> server_names;  // SANs for the server cert; always add
                                          // "quell-server", "localhost", "127.0.0.1", "::1"
  int device_cert_days = 825;
};

// Immutable once loaded; safe to use from several threads.
class CertificateAuthority {
 public:
  // Loads ca.key/ca.pem/server.key/server.pem from dir, creating any that are missing on
  // first start (keys 0600, certificates 0644). Re-issues server.key/server.pem when they are
  // missing, do not match, no longer verify against the CA (expired, other CA), or lack one
  // of the requested SANs. Only one of ca.key/ca.pem present, or a mismatched pair, is
  // FailedPrecondition: the CA is never silently regenerated.
  static Result<CertificateAuthority> LoadOrCreate(const CertificateAuthorityOptions& o);

  const std::string& ca_cert_pem() const { return ca_.cert_pem; }
  const std::string& server_cert_pem() const { return server_.cert_pem; }
  const std::string& server_key_pem() const { return server_.key_pem; }

  // A client certificate with CN=`device_id` for the key in `csr_pem`, valid for
  // device_cert_days. A malformed CSR or one whose signature fails is InvalidArgument.
  Result<pki::IssuedCertificate> IssueDeviceCertificate(const std::string& csr_pem,
                                                        const std::string& device_id) const;

 private:
  CertificateAuthority(pki::KeyAndCert ca, pki::KeyAndCert server, int device_cert_days)
      : ca_(std::move(ca)), server_(std::move(server)), device_cert_days_(device_cert_days) {}

  pki::KeyAndCert ca_;
  pki::KeyAndCert server_;
  int device_cert_days_;
};

}  // namespace quell::server
