// A throwaway CA and a server certificate it signed, for tests that run a TLS server on
// loopback. For tests only.
#pragma once

#include <stdexcept>

#include "common/pki.h"

namespace quell::testing {

struct TestPki {
  pki::KeyAndCert ca;
  pki::KeyAndCert server;  // CN quell-server, SANs 127.0.0.1 and localhost
};

// Both valid for one day. Throws std::runtime_error when OpenSSL fails, so the test fails.
inline TestPki MakeTestPki() {
  auto ca = pki::CreateCertificateAuthority("Quell Test CA", 1);
  if (!ca.ok()) throw std::runtime_error("test CA: " + ca.status().ToString());
  auto server = pki::CreateServerCertificate(*ca, "quell-server", {"127.0.0.1", "localhost"}, 1);
  if (!server.ok()) {
    throw std::runtime_error("test server certificate: " + server.status().ToString());
  }
  return {*ca, *server};
}

}  // namespace quell::testing
