#include "common/pki.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <string_view>

#include "common/hash.h"

namespace quell::pki {
namespace {

// Owning handles for OpenSSL objects: Owned<X509, X509_free> frees with X509_free.
template <auto kFree>
struct FreeWith {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};
template <typename T, auto kFree>
using Owned = std::unique_ptr<T, FreeWith<kFree>>;

void FreeOpenSslMemory(void* p) { OPENSSL_free(p); }  // OPENSSL_free is a macro

using Bio = Owned<BIO, BIO_free_all>;
using PKey = Owned<EVP_PKEY, EVP_PKEY_free>;
using Cert = Owned<X509, X509_free>;
using Req = Owned<X509_REQ, X509_REQ_free>;
using Bignum = Owned<BIGNUM, BN_free>;
using Extension = Owned<X509_EXTENSION, X509_EXTENSION_free>;
using GeneralNames = Owned<GENERAL_NAMES, GENERAL_NAMES_free>;
using Store = Owned<X509_STORE, X509_STORE_free>;
using StoreCtx = Owned<X509_STORE_CTX, X509_STORE_CTX_free>;
using OpenSslBytes = Owned<unsigned char, FreeOpenSslMemory>;
using OpenSslChars = Owned<char, FreeOpenSslMemory>;

constexpr size_t kMaxCommonName = 64;  // RFC 5280 ub-common-name
// notBefore lies this far in the past so a peer whose clock is slightly behind ours still
// accepts a certificate issued a moment ago.
constexpr long kBackdateSeconds = 5 * 60;

// Drains this thread's OpenSSL error queue into one Status, so a failure never surfaces
// later in an unrelated call.
Status SslError(StatusCode code, std::string what) {
  char buf[256];
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    what += ": ";
    what += buf;
  }
  return {code, std::move(what)};
}

// Encrypted keys are an error rather than a passphrase prompt on the terminal.
int NoPassphrase(char*, int, int, void*) { return -1; }

Bio ReadBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Runs `write(BIO*)` (a PEM_write_bio_* call) into memory and returns the text.
template <typename Write>
Result<std::string> WritePem(Write write) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) return SslError(StatusCode::kInternal, "encode PEM");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> KeyPem(EVP_PKEY* key) {
  return WritePem([&](BIO* b) {  // PKCS#8, unencrypted
    return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

Result<std::string> CertPem(X509* cert) {
  return WritePem([&](BIO* b) { return PEM_write_bio_X509(b, cert); });
}

Result<PKey> ParseKey(const std::string& pem) {
  Bio bio = ReadBio(pem);
  PKey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr);
  if (!key) return SslError(StatusCode::kInvalidArgument, "parse private key");
  return key;
}

Result<Cert> ParseCert(const std::string& pem) {
  Bio bio = ReadBio(pem);
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr);
  if (!cert) return SslError(StatusCode::kInvalidArgument, "parse certificate");
  return cert;
}

Result<PKey> NewKey() {
  PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return SslError(StatusCode::kInternal, "generate P-256 key");
  return key;
}

struct Issuer {
  PKey key;
  Cert cert;
};

Result<Issuer> ParseIssuer(const KeyAndCert& ca) {
  Issuer issuer;
  QUELL_ASSIGN_OR_RETURN(issuer.key, ParseKey(ca.key_pem));
  QUELL_ASSIGN_OR_RETURN(issuer.cert, ParseCert(ca.cert_pem));
  if (EVP_PKEY_eq(X509_get0_pubkey(issuer.cert.get()), issuer.key.get()) != 1) {
    ERR_clear_error();
    return InvalidArgument("CA key does not match the CA certificate");
  }
  return issuer;
}

Status SetCommonName(X509_NAME* name, const std::string& cn) {
  if (cn.empty() || cn.size() > kMaxCommonName) {
    return InvalidArgument("common name must be 1.." + std::to_string(kMaxCommonName) + " bytes");
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(cn.data());
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, bytes,
                                 static_cast<int>(cn.size()), -1, 0) != 1) {
    return SslError(StatusCode::kInvalidArgument, "set common name");
  }
  return Status::Ok();
}

bool IsIpAddress(const std::string& s) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool IsDnsName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) && c != '-' && c != '.' && c != '_' && c != '*') return false;
  }
  return true;
}

Result<GeneralNames> MakeSubjectAltNames(const std::vector<std::string>& names) {
  GeneralNames gens(sk_GENERAL_NAME_new_null());
  if (!gens) return SslError(StatusCode::kInternal, "allocate SANs");
  for (const std::string& n : names) {
    int type = IsIpAddress(n) ? GEN_IPADD : IsDnsName(n) ? GEN_DNS : -1;
    if (type < 0) return InvalidArgument("not an IP address or DNS name: '" + n + "'");
    GENERAL_NAME* gen = a2i_GENERAL_NAME(nullptr, nullptr, nullptr, type, n.c_str(), 0);
    if (gen == nullptr) return SslError(StatusCode::kInvalidArgument, "SAN '" + n + "'");
    if (sk_GENERAL_NAME_push(gens.get(), gen) <= 0) {
      GENERAL_NAME_free(gen);
      return SslError(StatusCode::kInternal, "add SAN");
    }
  }
  return gens;
}

Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];  // 128 bits, unpredictable per CA/Browser Forum practice
  if (RAND_bytes(bytes, sizeof bytes) != 1) return SslError(StatusCode::kInternal, "random serial");
  Bignum bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return SslError(StatusCode::kInternal, "set serial");
  }
  return Status::Ok();
}

std::string SerialHex(const X509* cert) {
  Bignum bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  OpenSslChars hex(bn ? BN_bn2hex(bn.get()) : nullptr);
  std::string out = hex ? hex.get() : "";
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct ExtensionSpec {
  int nid;
  const char* value;  // openssl x509v3_config syntax
};

// Builds and signs a v3 certificate for `subject_key` with subject CN=`cn` and a random
// serial. Self-signed when `issuer` is null.
Result<Cert> BuildCertificate(EVP_PKEY* subject_key, const std::string& cn, int days,
                              const Issuer* issuer, std::initializer_list<ExtensionSpec> exts,
                              const GENERAL_NAMES* sans = nullptr) {
  if (days <= 0) return InvalidArgument("validity must be at least one day");
  Cert cert(X509_new());
  if (!cert) return SslError(StatusCode::kInternal, "allocate certificate");
  X509* issuer_cert = issuer ? issuer->cert.get() : cert.get();
  EVP_PKEY* signing_key = issuer ? issuer->key.get() : subject_key;
  QUELL_RETURN_IF_ERROR(SetCommonName(X509_get_subject_name(cert.get()), cn));
  QUELL_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr) == nullptr) {
    return SslError(StatusCode::kInternal, "fill certificate");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
  for (const ExtensionSpec& spec : exts) {
    Extension ext(X509V3_EXT_conf_nid(nullptr, &ctx, spec.nid, spec.value));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) {
      return SslError(StatusCode::kInternal, std::string("add extension ") + OBJ_nid2sn(spec.nid));
    }
  }
  if (sans != nullptr &&
      X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, const_cast<GENERAL_NAMES*>(sans), 0,
                        X509V3_ADD_DEFAULT) != 1) {
    return SslError(StatusCode::kInternal, "add subjectAltName");
  }
  if (X509_sign(cert.get(), signing_key, EVP_sha256()) <= 0) {
    return SslError(StatusCode::kInternal, "sign certificate");
  }
  return cert;
}

}  // namespace

Result<KeyAndCert> CreateCertificateAuthority(const std::string& common_name, int days) {
  QUELL_ASSIGN_OR_RETURN(PKey key, NewKey());
  QUELL_ASSIGN_OR_RETURN(Cert cert,
                         BuildCertificate(key.get(), common_name, days, nullptr,
                                          {{NID_basic_constraints, "critical,CA:TRUE"},
                                           {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                           {NID_subject_key_identifier, "hash"}}));
  KeyAndCert out;
  QUELL_ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  QUELL_ASSIGN_OR_RETURN(out.cert_pem, CertPem(cert.get()));
  return out;
}

Result<KeyAndCert> CreateServerCertificate(const KeyAndCert& ca, const std::string& common_name,
                                           const std::vector<std::string>& subject_alt_names,
                                           int days) {
  QUELL_ASSIGN_OR_RETURN(Issuer issuer, ParseIssuer(ca));
  QUELL_ASSIGN_OR_RETURN(GeneralNames sans, MakeSubjectAltNames(subject_alt_names));
  QUELL_ASSIGN_OR_RETURN(PKey key, NewKey());
  QUELL_ASSIGN_OR_RETURN(Cert cert,
                         BuildCertificate(key.get(), common_name, days, &issuer,
                                          {{NID_basic_constraints, "critical,CA:FALSE"},
                                           {NID_key_usage, "critical,digitalSignature"},
                                           {NID_ext_key_usage, "serverAuth"},
                                           {NID_subject_key_identifier, "hash"},
                                           {NID_authority_key_identifier, "keyid:always"}},
                                          sans.get()));
  KeyAndCert out;
  QUELL_ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  QUELL_ASSIGN_OR_RETURN(out.cert_pem, CertPem(cert.get()));
  return out;
}

Result<KeyAndCert> CreateKeyAndCsr(const std::string& common_name) {
  QUELL_ASSIGN_OR_RETURN(PKey key, NewKey());
  Req req(X509_REQ_new());
  if (!req) return SslError(StatusCode::kInternal, "allocate CSR");
  QUELL_RETURN_IF_ERROR(SetCommonName(X509_REQ_get_subject_name(req.get()), common_name));
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1 ||
      X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return SslError(StatusCode::kInternal, "build CSR");
  }
  KeyAndCert out;
  QUELL_ASSIGN_OR_RETURN(out.key_pem, KeyPem(key.get()));
  QUELL_ASSIGN_OR_RETURN(out.cert_pem,
                         WritePem([&](BIO* b) { return PEM_write_bio_X509_REQ(b, req.get()); }));
  return out;
}

Result<IssuedCertificate> SignClientCertificate(const KeyAndCert& ca, const std::string& csr_pem,
                                                const std::string& common_name, int days) {
  Bio bio = ReadBio(csr_pem);
  Req req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, NoPassphrase, nullptr) : nullptr);
  if (!req) return SslError(StatusCode::kInvalidArgument, "parse CSR");
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr || X509_REQ_verify(req.get(), key) != 1) {
    return SslError(StatusCode::kInvalidArgument, "CSR signature does not verify");
  }
  if (EVP_PKEY_get_security_bits(key) < 112) return InvalidArgument("CSR key is too weak");
  QUELL_ASSIGN_OR_RETURN(Issuer issuer, ParseIssuer(ca));
  QUELL_ASSIGN_OR_RETURN(Cert cert,
                         BuildCertificate(key, common_name, days, &issuer,
                                          {{NID_basic_constraints, "critical,CA:FALSE"},
                                           {NID_key_usage, "critical,digitalSignature"},
                                           {NID_ext_key_usage, "clientAuth"},
                                           {NID_subject_key_identifier, "hash"},
                                           {NID_authority_key_identifier, "keyid:always"}}));
  IssuedCertificate out;
  QUELL_ASSIGN_OR_RETURN(out.cert_pem, CertPem(cert.get()));
  out.serial_hex = SerialHex(cert.get());
  return out;
}

Result<CertificateInfo> InspectCertificate(const std::string& cert_pem) {
  QUELL_ASSIGN_OR_RETURN(Cert cert, ParseCert(cert_pem));
  CertificateInfo info;
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
    OpenSslBytes owned(utf8);
    if (n < 0) return SslError(StatusCode::kInvalidArgument, "decode common name");
    info.common_name.assign(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
  }
  info.serial_hex = SerialHex(cert.get());

  unsigned char* der = nullptr;
  int der_len = i2d_X509(cert.get(), &der);
  OpenSslBytes owned_der(der);
  if (der_len <= 0) return SslError(StatusCode::kInternal, "encode certificate");
  info.sha256_fingerprint =
      Sha256Hex(std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(der_len)));

  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) {
    return SslError(StatusCode::kInvalidArgument, "decode notAfter");
  }
  info.not_after_unix = static_cast<int64_t>(timegm(&tm));

  GeneralNames sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gen = sk_GENERAL_NAME_value(sans.get(), i);
    if (gen->type == GEN_DNS) {
      const auto* s = ASN1_STRING_get0_data(gen->d.dNSName);
      info.subject_alt_names.emplace_back(reinterpret_cast<const char*>(s),
                                          ASN1_STRING_length(gen->d.dNSName));
    } else if (gen->type == GEN_IPADD) {
      int len = ASN1_STRING_length(gen->d.iPAddress);
      char text[INET6_ADDRSTRLEN];
      if ((len == 4 || len == 16) &&
          inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gen->d.iPAddress), text,
                    sizeof text) != nullptr) {
        info.subject_alt_names.emplace_back(text);
      }
    }
  }
  return info;
}

Result<bool> VerifyIssuedBy(const std::string& cert_pem, const std::string& ca_cert_pem) {
  QUELL_ASSIGN_OR_RETURN(Cert cert, ParseCert(cert_pem));
  QUELL_ASSIGN_OR_RETURN(Cert ca, ParseCert(ca_cert_pem));
  Store store(X509_STORE_new());
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca.get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) != 1) {
    return SslError(StatusCode::kInternal, "set up verification");
  }
  bool ok = X509_verify_cert(ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

Result<bool> KeyMatchesCertificate(const std::string& key_pem, const std::string& cert_pem) {
  QUELL_ASSIGN_OR_RETURN(PKey key, ParseKey(key_pem));
  QUELL_ASSIGN_OR_RETURN(Cert cert, ParseCert(cert_pem));
  bool match = EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key.get()) == 1;
  ERR_clear_error();
  return match;
}

}  // namespace quell::pki
