#include "server/pki/certificate_authority.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "common/files.h"
#include "common/logging.h"

namespace quell::server {
namespace {

constexpr char kCaCommonName[] = "Quell CA";
constexpr char kServerCommonName[] = "quell-server";
// Agents pin the CA certificate, so it outlives many server certificates.
constexpr int kCaDays = 3650;
constexpr int kServerCertDays = 825;
const std::vector<std::string> kDefaultServerNames = {"quell-server", "localhost", "127.0.0.1",
                                                      "::1"};

// The form in which two spellings of one name compare equal: IP addresses as inet_ntop
// prints them (as InspectCertificate reports them), DNS names in lowercase.
std::string CanonicalName(const std::string& name) {
  unsigned char addr[sizeof(in6_addr)];
  char text[INET6_ADDRSTRLEN];
  for (int family : {AF_INET, AF_INET6}) {
    if (inet_pton(family, name.c_str(), addr) == 1 &&
        inet_ntop(family, addr, text, sizeof text) != nullptr) {
      return text;
    }
  }
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// The requested names followed by the defaults, each once, in canonical form.
std::vector<std::string> ServerNames(const std::vector<std::string>& requested) {
  std::vector<std::string> names;
  for (const auto* list : {&requested, &kDefaultServerNames}) {
    for (const std::string& name : *list) {
      std::string canonical = CanonicalName(name);
      if (std::find(names.begin(), names.end(), canonical) == names.end()) {
        names.push_back(std::move(canonical));
      }
    }
  }
  return names;
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

struct PairPaths {
  std::string key;
  std::string cert;
};

PairPaths Paths(const std::string& dir, const std::string& stem) {
  return {dir + "/" + stem + ".key", dir + "/" + stem + ".pem"};
}

Result<pki::KeyAndCert> ReadPair(const PairPaths& paths) {
  pki::KeyAndCert pair;
  QUELL_ASSIGN_OR_RETURN(pair.key_pem, ReadFile(paths.key));
  QUELL_ASSIGN_OR_RETURN(pair.cert_pem, ReadFile(paths.cert));
  return pair;
}

// The key goes first so that a crash between the writes never leaves a certificate whose
// key is missing.
Status WritePair(const PairPaths& paths, const pki::KeyAndCert& pair) {
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(paths.key, pair.key_pem, 0600));
  return WriteFileAtomic(paths.cert, pair.cert_pem, 0644);
}

Result<pki::KeyAndCert> LoadOrCreateCa(const std::string& dir) {
  PairPaths paths = Paths(dir, "ca");
  if (!Exists(paths.key) && !Exists(paths.cert)) {
    QUELL_ASSIGN_OR_RETURN(pki::KeyAndCert ca,
                           pki::CreateCertificateAuthority(kCaCommonName, kCaDays));
    QUELL_RETURN_IF_ERROR(WritePair(paths, ca));
    QUELL_ASSIGN_OR_RETURN(pki::CertificateInfo info, pki::InspectCertificate(ca.cert_pem));
    Logger("server.pki")
        ->info("created certificate authority dir={} sha256={}", dir, info.sha256_fingerprint);
    return ca;
  }
  Result<pki::KeyAndCert> ca = ReadPair(paths);
  if (ca.status().code() == StatusCode::kNotFound) {
    return FailedPrecondition(fmt::format(
        "{} or {} is missing; restore it from backup (a new CA would orphan every enrolled "
        "agent, so remove both files only to start over)",
        paths.key, paths.cert));
  }
  if (!ca.ok()) return ca.status();
  QUELL_ASSIGN_OR_RETURN(bool match, pki::KeyMatchesCertificate(ca->key_pem, ca->cert_pem));
  if (!match) return FailedPrecondition(paths.key + " does not match " + paths.cert);
  return ca;
}

// Whether the stored server pair can be served as is for `names`.
Result<bool> ServerPairUsable(const pki::KeyAndCert& server, const pki::KeyAndCert& ca,
                              const std::vector<std::string>& names) {
  QUELL_ASSIGN_OR_RETURN(bool match, pki::KeyMatchesCertificate(server.key_pem, server.cert_pem));
  QUELL_ASSIGN_OR_RETURN(bool verifies, pki::VerifyIssuedBy(server.cert_pem, ca.cert_pem));
  if (!match || !verifies) return false;
  QUELL_ASSIGN_OR_RETURN(pki::CertificateInfo info, pki::InspectCertificate(server.cert_pem));
  std::vector<std::string> present;
  for (const std::string& name : info.subject_alt_names) present.push_back(CanonicalName(name));
  return std::all_of(names.begin(), names.end(), [&](const std::string& n) {
    return std::find(present.begin(), present.end(), n) != present.end();
  });
}

Result<pki::KeyAndCert> LoadOrIssueServer(const std::string& dir, const pki::KeyAndCert& ca,
                                          const std::vector<std::string>& names) {
  PairPaths paths = Paths(dir, "server");
  Result<pki::KeyAndCert> server = ReadPair(paths);
  if (server.ok()) {
    // A corrupt stored pair is replaced rather than fatal: the server cert is ours to remake.
    Result<bool> usable = ServerPairUsable(*server, ca, names);
    if (usable.ok() && *usable) return server;
  } else if (server.status().code() != StatusCode::kNotFound) {
    return server.status();
  }
  QUELL_ASSIGN_OR_RETURN(
      pki::KeyAndCert issued,
      pki::CreateServerCertificate(ca, kServerCommonName, names, kServerCertDays));
  QUELL_RETURN_IF_ERROR(WritePair(paths, issued));
  Logger("server.pki")->info("issued server certificate names={}", fmt::join(names, ","));
  return issued;
}

}  // namespace

Result<CertificateAuthority> CertificateAuthority::LoadOrCreate(
    const CertificateAuthorityOptions& o) {
  if (o.dir.empty()) return InvalidArgument("pki directory is not set");
  if (o.device_cert_days <= 0) return InvalidArgument("device_cert_days must be positive");
  QUELL_RETURN_IF_ERROR(MakeDirs(o.dir, 0700));
  QUELL_ASSIGN_OR_RETURN(pki::KeyAndCert ca, LoadOrCreateCa(o.dir));
  QUELL_ASSIGN_OR_RETURN(pki::KeyAndCert server,
                         LoadOrIssueServer(o.dir, ca, ServerNames(o.server_names)));
  return CertificateAuthority(std::move(ca), std::move(server), o.device_cert_days);
}

Result<pki::IssuedCertificate> CertificateAuthority::IssueDeviceCertificate(
    const std::string& csr_pem, const std::string& device_id) const {
  Result<pki::IssuedCertificate> issued =
      pki::SignClientCertificate(ca_, csr_pem, device_id, device_cert_days_);
  if (issued.ok()) {
    Logger("server.pki")
        ->info("issued device certificate device={} serial={}", device_id, issued->serial_hex);
  }
  return issued;
}

}  // namespace quell::server
