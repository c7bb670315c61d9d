#include "server/pki/certificate_authority.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/files.h"
#include "common/testing/temp_dir.h"

namespace quell::server {
namespace {

using ::testing::IsSupersetOf;

class CertificateAuthorityTest : public ::testing::Test {
 protected:
  CertificateAuthority Load(std::vector<std::string> names = {}) {
    auto ca = CertificateAuthority::LoadOrCreate({.dir = dir_, .server_names = std::move(names)});
    EXPECT_TRUE(ca.ok()) << ca.status().ToString();
    return std::move(ca).value();
  }
  unsigned Mode(const std::string& name) {
    struct stat st {};
    EXPECT_EQ(stat((dir_ + "/" + name).c_str(), &st), 0) << name;
    return st.st_mode & 0777;
  }
  std::string Fingerprint(const std::string& pem) {
    return pki::InspectCertificate(pem).value().sha256_fingerprint;
  }

  quell::testing::TempDir root_;
  std::string dir_ = root_ / "data/pki";
};

TEST_F(CertificateAuthorityTest, FirstStartCreatesFilesWithPrivateModes) {
  CertificateAuthority ca = Load();
  EXPECT_EQ(Mode(""), 0700u);
  EXPECT_EQ(Mode("ca.key"), 0600u);
  EXPECT_EQ(Mode("server.key"), 0600u);
  EXPECT_EQ(Mode("ca.pem") & 0022, 0u);  // public, but nobody else may replace it
  EXPECT_EQ(Mode("server.pem") & 0022, 0u);
  EXPECT_EQ(ListFiles(dir_).value(),
            (std::vector<std::string>{"ca.key", "ca.pem", "server.key", "server.pem"}));
  EXPECT_EQ(ReadFile(dir_ + "/ca.pem").value(), ca.ca_cert_pem());
  EXPECT_EQ(ReadFile(dir_ + "/server.pem").value(), ca.server_cert_pem());
  EXPECT_EQ(ReadFile(dir_ + "/server.key").value(), ca.server_key_pem());
  EXPECT_EQ(pki::InspectCertificate(ca.ca_cert_pem())->common_name, "Quell CA");
}

TEST_F(CertificateAuthorityTest, SecondStartLoadsTheSameCaAndServerCertificate) {
  CertificateAuthority first = Load({"quell.example.com"});
  CertificateAuthority second = Load({"quell.example.com"});
  EXPECT_EQ(Fingerprint(first.ca_cert_pem()), Fingerprint(second.ca_cert_pem()));
  EXPECT_EQ(first.server_cert_pem(), second.server_cert_pem());
  EXPECT_EQ(first.server_key_pem(), second.server_key_pem());
}

TEST_F(CertificateAuthorityTest, ServerCertificateVerifiesAndCarriesRequestedAndDefaultSans) {
  CertificateAuthority ca = Load({"quell.example.com", "10.1.2.3"});
  EXPECT_TRUE(pki::VerifyIssuedBy(ca.server_cert_pem(), ca.ca_cert_pem()).value());
  EXPECT_TRUE(pki::KeyMatchesCertificate(ca.server_key_pem(), ca.server_cert_pem()).value());
  auto info = pki::InspectCertificate(ca.server_cert_pem());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "quell-server");
  EXPECT_THAT(info->subject_alt_names,
              IsSupersetOf({"quell.example.com", "10.1.2.3", "quell-server", "localhost",
                            "127.0.0.1", "::1"}));
}

TEST_F(CertificateAuthorityTest, NewServerNameReissuesServerCertificateButKeepsCa) {
  CertificateAuthority first = Load({"10.1.2.3"});
  CertificateAuthority second = Load({"10.1.2.3", "quell.example.com"});
  EXPECT_EQ(Fingerprint(first.ca_cert_pem()), Fingerprint(second.ca_cert_pem()));
  EXPECT_NE(first.server_cert_pem(), second.server_cert_pem());
  EXPECT_THAT(pki::InspectCertificate(second.server_cert_pem())->subject_alt_names,
              IsSupersetOf({"10.1.2.3", "quell.example.com"}));
  EXPECT_EQ(ReadFile(dir_ + "/server.pem").value(), second.server_cert_pem());

  // Names already covered, in another spelling or as a subset, keep the certificate.
  CertificateAuthority third = Load({"QUELL.example.com", "::0001"});
  EXPECT_EQ(third.server_cert_pem(), second.server_cert_pem());
}

TEST_F(CertificateAuthorityTest, ServerCertificateFromAnotherCaIsReplaced) {
  CertificateAuthority ours = Load();
  auto foreign_ca = pki::CreateCertificateAuthority("Quell CA", 30).value();
  auto foreign =
      pki::CreateServerCertificate(foreign_ca, "quell-server", {"localhost"}, 30).value();
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/server.key", foreign.key_pem).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/server.pem", foreign.cert_pem).ok());

  CertificateAuthority reloaded = Load();
  EXPECT_NE(reloaded.server_cert_pem(), foreign.cert_pem);
  EXPECT_TRUE(pki::VerifyIssuedBy(reloaded.server_cert_pem(), ours.ca_cert_pem()).value());
}

TEST_F(CertificateAuthorityTest, MismatchedServerKeyIsReplaced) {
  CertificateAuthority ours = Load();
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/server.key", pki::CreateKeyAndCsr("x")->key_pem).ok());
  CertificateAuthority reloaded = Load();
  EXPECT_TRUE(
      pki::KeyMatchesCertificate(reloaded.server_key_pem(), reloaded.server_cert_pem()).value());
  EXPECT_EQ(ReadFile(dir_ + "/server.key").value(), reloaded.server_key_pem());
}

TEST_F(CertificateAuthorityTest, LostCaKeyIsFailedPreconditionAndNothingIsOverwritten) {
  CertificateAuthority ca = Load();
  ASSERT_TRUE(RemoveFile(dir_ + "/ca.key").ok());
  auto reloaded = CertificateAuthority::LoadOrCreate({.dir = dir_});
  EXPECT_EQ(reloaded.status().code(), StatusCode::kFailedPrecondition)
      << reloaded.status().ToString();
  EXPECT_EQ(ReadFile(dir_ + "/ca.pem").value(), ca.ca_cert_pem());
  EXPECT_FALSE(ReadFile(dir_ + "/ca.key").ok());
}

TEST_F(CertificateAuthorityTest, ForeignCaKeyIsFailedPrecondition) {
  Load();
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/ca.key", pki::CreateKeyAndCsr("x")->key_pem).ok());
  EXPECT_EQ(CertificateAuthority::LoadOrCreate({.dir = dir_}).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(CertificateAuthorityTest, IssuedDeviceCertificateVerifiesWithDeviceIdAsCommonName) {
  auto ca = CertificateAuthority::LoadOrCreate({.dir = dir_, .device_cert_days = 10});
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  auto csr = pki::CreateKeyAndCsr("my-laptop").value();
  auto issued = ca->IssueDeviceCertificate(csr.cert_pem, "dev-42");
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  EXPECT_TRUE(pki::VerifyIssuedBy(issued->cert_pem, ca->ca_cert_pem()).value());
  auto info = pki::InspectCertificate(issued->cert_pem).value();
  EXPECT_EQ(info.common_name, "dev-42");
  EXPECT_NEAR(static_cast<double>(info.not_after_unix),
              static_cast<double>(std::time(nullptr) + 10 * 86400), 120);

  // Another server's CA does not accept it.
  CertificateAuthorityOptions other{.dir = root_ / "other"};
  EXPECT_FALSE(pki::VerifyIssuedBy(issued->cert_pem,
                                   CertificateAuthority::LoadOrCreate(other)->ca_cert_pem())
                   .value());
  EXPECT_EQ(ca->IssueDeviceCertificate("garbage", "dev-42").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(CertificateAuthorityTest, InvalidOptionsAreRejected) {
  EXPECT_EQ(CertificateAuthority::LoadOrCreate({.dir = ""}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      CertificateAuthority::LoadOrCreate({.dir = dir_, .device_cert_days = 0}).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(CertificateAuthority::LoadOrCreate({.dir = dir_, .server_names = {"bad name"}})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quell::server
