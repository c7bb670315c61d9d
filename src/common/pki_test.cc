#include "common/pki.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::pki {
namespace {

using ::testing::ElementsAre;

const std::vector<std::string> kServerNames = {"quell-server", "localhost", "127.0.0.1", "::1"};

KeyAndCert MakeCa(const std::string& cn = "Quell Test CA") {
  auto ca = CreateCertificateAuthority(cn, 30);
  EXPECT_TRUE(ca.ok()) << ca.status().ToString();
  return ca.value();
}

// Flips one bit in the last byte of the DER, which lies inside the signature, and re-encodes
// the PEM: the structure still parses but the signature no longer verifies.
std::string CorruptSignature(const std::string& pem, const std::string& label) {
  std::string begin = "-----BEGIN " + label + "-----\n";
  std::string end = "-----END " + label + "-----";
  std::string b64;
  for (char c : pem.substr(begin.size(), pem.find(end) - begin.size())) {
    if (c != '\n') b64 += c;
  }
  std::string der(b64.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(der.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  der.resize(static_cast<size_t>(n) - std::count(b64.begin(), b64.end(), '='));
  der.back() ^= 0x01;
  std::string out(4 * ((der.size() + 2) / 3) + 1, '\0');
  n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(der.data()),
                      static_cast<int>(der.size()));
  out.resize(static_cast<size_t>(n));
  std::string wrapped = begin;
  for (size_t i = 0; i < out.size(); i += 64) wrapped += out.substr(i, 64) + "\n";
  return wrapped + end + "\n";
}

TEST(PkiTest, CertificateAuthorityIsSelfSignedWithRequestedLifetime) {
  KeyAndCert ca = MakeCa();
  EXPECT_NE(ca.key_pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  auto info = InspectCertificate(ca.cert_pem);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->common_name, "Quell Test CA");
  EXPECT_EQ(info->sha256_fingerprint.size(), 64u);
  EXPECT_NEAR(static_cast<double>(info->not_after_unix),
              static_cast<double>(std::time(nullptr) + 30 * 86400), 120);
  EXPECT_TRUE(VerifyIssuedBy(ca.cert_pem, ca.cert_pem).value());
  EXPECT_TRUE(KeyMatchesCertificate(ca.key_pem, ca.cert_pem).value());
}

TEST(PkiTest, ServerCertificateVerifiesAndCarriesIpAndDnsSans) {
  KeyAndCert ca = MakeCa();
  auto server = CreateServerCertificate(ca, "quell-server", kServerNames, 30);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_TRUE(VerifyIssuedBy(server->cert_pem, ca.cert_pem).value());
  EXPECT_TRUE(KeyMatchesCertificate(server->key_pem, server->cert_pem).value());
  EXPECT_FALSE(KeyMatchesCertificate(ca.key_pem, server->cert_pem).value());
  auto info = InspectCertificate(server->cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "quell-server");
  EXPECT_THAT(info->subject_alt_names,
              ElementsAre("quell-server", "localhost", "127.0.0.1", "::1"));
}

TEST(PkiTest, ServerCertificateRejectsMalformedNamesAndLifetimes) {
  KeyAndCert ca = MakeCa();
  EXPECT_EQ(CreateServerCertificate(ca, "s", {"ok", "bad,IP:1.2.3.4"}, 30).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateServerCertificate(ca, "s", {""}, 30).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateServerCertificate(ca, "s", {"localhost"}, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateServerCertificate(ca, std::string(65, 'x'), {"localhost"}, 1).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(PkiTest, SignedCsrGetsDeviceIdAsCommonNameAndKeepsCsrKey) {
  KeyAndCert ca = MakeCa();
  auto csr = CreateKeyAndCsr("admin");  // the agent's claimed name must not survive
  ASSERT_TRUE(csr.ok()) << csr.status().ToString();
  EXPECT_NE(csr->cert_pem.find("BEGIN CERTIFICATE REQUEST"), std::string::npos);
  auto issued = SignClientCertificate(ca, csr->cert_pem, "dev-0001", 30);
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  EXPECT_TRUE(VerifyIssuedBy(issued->cert_pem, ca.cert_pem).value());
  EXPECT_TRUE(KeyMatchesCertificate(csr->key_pem, issued->cert_pem).value());
  auto info = InspectCertificate(issued->cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "dev-0001");
  EXPECT_EQ(info->serial_hex, issued->serial_hex);
  EXPECT_TRUE(info->subject_alt_names.empty());
}

TEST(PkiTest, BrokenOrGarbageCsrIsInvalidArgument) {
  KeyAndCert ca = MakeCa();
  auto csr = CreateKeyAndCsr("agent").value();
  std::string broken = CorruptSignature(csr.cert_pem, "CERTIFICATE REQUEST");
  ASSERT_NE(broken, csr.cert_pem);
  auto s = SignClientCertificate(ca, broken, "dev-1", 30).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("signature"), std::string::npos) << s.ToString();
  for (const std::string& garbage : {std::string(), std::string("hello"), ca.cert_pem}) {
    EXPECT_EQ(SignClientCertificate(ca, garbage, "dev-1", 30).status().code(),
              StatusCode::kInvalidArgument);
  }
  // The same CSR uncorrupted is accepted: the rejection above is due to the flipped bit.
  EXPECT_TRUE(SignClientCertificate(ca, csr.cert_pem, "dev-1", 30).ok());
}

TEST(PkiTest, CorruptedCertificateSignatureFailsVerification) {
  KeyAndCert ca = MakeCa();
  auto server = CreateServerCertificate(ca, "s", {"localhost"}, 30).value();
  EXPECT_FALSE(
      VerifyIssuedBy(CorruptSignature(server.cert_pem, "CERTIFICATE"), ca.cert_pem).value());
}

TEST(PkiTest, CertificateFromAnotherCaDoesNotVerify) {
  KeyAndCert ca = MakeCa("Quell CA");
  KeyAndCert other = MakeCa("Quell CA");  // same name: only the key tells them apart
  auto server = CreateServerCertificate(other, "quell-server", kServerNames, 30).value();
  auto csr = CreateKeyAndCsr("agent").value();
  auto device = SignClientCertificate(other, csr.cert_pem, "dev-1", 30).value();
  EXPECT_FALSE(VerifyIssuedBy(server.cert_pem, ca.cert_pem).value());
  EXPECT_FALSE(VerifyIssuedBy(device.cert_pem, ca.cert_pem).value());
  EXPECT_FALSE(VerifyIssuedBy(other.cert_pem, ca.cert_pem).value());
  EXPECT_TRUE(VerifyIssuedBy(device.cert_pem, other.cert_pem).value());
}

TEST(PkiTest, MismatchedCaKeyIsRejected) {
  KeyAndCert ca = MakeCa();
  KeyAndCert other = MakeCa();
  KeyAndCert mixed{other.key_pem, ca.cert_pem};
  auto csr = CreateKeyAndCsr("agent").value();
  EXPECT_EQ(SignClientCertificate(mixed, csr.cert_pem, "dev-1", 30).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateServerCertificate(mixed, "s", {"localhost"}, 30).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(PkiTest, IssuedSerialsDiffer) {
  KeyAndCert ca = MakeCa();
  auto csr = CreateKeyAndCsr("agent").value();
  auto a = SignClientCertificate(ca, csr.cert_pem, "dev-1", 30).value();
  auto b = SignClientCertificate(ca, csr.cert_pem, "dev-1", 30).value();
  EXPECT_NE(a.serial_hex, b.serial_hex);
  EXPECT_GE(a.serial_hex.size(), 30u);  // 128 random bits; a leading zero nibble may drop
  EXPECT_EQ(a.serial_hex.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(PkiTest, GarbageInputsToInspectAndVerifyAreInvalidArgument) {
  KeyAndCert ca = MakeCa();
  EXPECT_EQ(InspectCertificate("nope").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyIssuedBy("nope", ca.cert_pem).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyIssuedBy(ca.cert_pem, "nope").status().code(), StatusCode::kInvalidArgument);
}

// Interoperability with the reference implementation: the openssl CLI accepts what we issue
// for the intended purpose, and we accept a CSR it produced.
TEST(PkiTest, OpensslCliInteroperates) {
  if (std::system("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
  quell::testing::TempDir temp_dir;
  const std::string& dir = temp_dir.path();
  auto run = [&](const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str());
  };

  KeyAndCert ca = MakeCa();
  auto server = CreateServerCertificate(ca, "quell-server", kServerNames, 30).value();
  auto csr = CreateKeyAndCsr("agent").value();
  auto device = SignClientCertificate(ca, csr.cert_pem, "dev-1", 30).value();
  ASSERT_TRUE(WriteFileAtomic(dir + "/ca.pem", ca.cert_pem).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/server.pem", server.cert_pem).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/device.pem", device.cert_pem).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/csr.pem", csr.cert_pem).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/csr.key", csr.key_pem).ok());
  std::string verify = "openssl verify -x509_strict -CAfile " + dir + "/ca.pem ";
  EXPECT_EQ(run(verify + "-purpose sslserver -verify_hostname quell-server " + dir + "/server.pem"),
            0);
  EXPECT_EQ(run(verify + "-purpose sslserver -verify_ip ::1 " + dir + "/server.pem"), 0);
  EXPECT_EQ(run(verify + "-purpose sslclient " + dir + "/device.pem"), 0);
  EXPECT_NE(run(verify + "-purpose sslserver " + dir + "/device.pem"), 0);  // clientAuth only
  EXPECT_NE(run(verify + "-purpose sslserver -verify_hostname evil " + dir + "/server.pem"), 0);
  EXPECT_EQ(run("openssl req -verify -noout -in " + dir + "/csr.pem"), 0);
  EXPECT_EQ(run("openssl pkey -noout -in " + dir + "/csr.key"), 0);

  ASSERT_EQ(run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=x"
                " -keyout " +
                dir + "/cli.key -out " + dir + "/cli.csr"),
            0);
  auto cli_csr = ReadFile(dir + "/cli.csr");
  ASSERT_TRUE(cli_csr.ok());
  auto issued = SignClientCertificate(ca, *cli_csr, "dev-cli", 30);
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  EXPECT_EQ(InspectCertificate(issued->cert_pem)->common_name, "dev-cli");
  EXPECT_TRUE(KeyMatchesCertificate(ReadFile(dir + "/cli.key").value(), issued->cert_pem).value());
}

}  // namespace
}  // namespace quell::pki
