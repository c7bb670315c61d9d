// The small X.509 toolkit Quell needs: the server's own CA, its TLS certificate, device
// certificates issued from CSRs at enrollment, and the agent's key and CSR. Keys are ECDSA
// P-256 (fast to make, small on the wire); everything is exchanged as PEM text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell::pki {

struct KeyAndCert {
  std::string key_pem;   // PKCS#8 private key
  std::string cert_pem;
};

// A self-signed CA certificate valid for `days`, with basicConstraints CA:TRUE and
// keyUsage keyCertSign, cRLSign.
Result<KeyAndCert> CreateCertificateAuthority(const std::string& common_name, int days);

// A TLS server certificate signed by the CA. `subject_alt_names` entries are IP addresses
// ("127.0.0.1", "::1") or DNS names ("localhost", "quell-server"); each becomes the right
// SAN type. extendedKeyUsage serverAuth.
Result<KeyAndCert> CreateServerCertificate(const KeyAndCert& ca, const std::string& common_name,
                                           const std::vector<std::string>& subject_alt_names,
                                           int days);

// A new private key (PEM) and a CSR (PEM) for it. The subject CN is informational only.
Result<KeyAndCert> CreateKeyAndCsr(const std::string& common_name);  // cert_pem holds the CSR

struct IssuedCertificate {
  std::string cert_pem;
  std::string serial_hex;  // lowercase hex, no leading zeros stripped beyond OpenSSL's form
};

// Verifies the CSR's self-signature and issues a client certificate with subject
// CN=`common_name` (the device id), a random 128-bit serial, extendedKeyUsage clientAuth,
// valid for `days`. The CSR's own subject and extensions are ignored.
Result<IssuedCertificate> SignClientCertificate(const KeyAndCert& ca, const std::string& csr_pem,
                                                const std::string& common_name, int days);

struct CertificateInfo {
  std::string common_name;
  std::string serial_hex;
  std::string sha256_fingerprint;  // lowercase hex of SHA-256 over the DER encoding
  int64_t not_after_unix = 0;
  // DNS names as written, IP addresses in inet_ntop form ("127.0.0.1", "::1").
  std::vector<std::string> subject_alt_names;
};

Result<CertificateInfo> InspectCertificate(const std::string& cert_pem);

// True if `cert_pem` was signed by `ca_cert_pem` and is within its validity period.
Result<bool> VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_cert_pem);

// True if `key_pem` is the private key for the public key in `cert_pem`.
Result<bool> KeyMatchesCertificate(const std::string& key_pem, const std::string& cert_pem);

}  // namespace quell::pki
