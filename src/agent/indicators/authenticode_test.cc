// Authenticode parsing and certificate indicators, on real signed PE files: the test writes a
// minimal PE32+ by hand, makes a CA and a code-signing leaf with the openssl CLI and signs the
// file with osslsigncode (installed by scripts/install-deps.sh; missing = the test fails).
#include "agent/indicators/authenticode.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include "agent/indicators/allowed_file_filter.h"
#include "agent/indicators/file_indicator_match.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/testing/temp_dir.h"
#include "common/unique_fd.h"

namespace quell::agent {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t kLfanew = 0x40;
constexpr uint32_t kOptionalHeaderBytes = 240;  // PE32+: 112 + 16 data directories
constexpr uint32_t kCodeOffset = 0x200;         // FileAlignment; the one section's raw data

void Put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}
void Put32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(Bytes& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// A minimal valid PE32+ (x86-64 console program whose entry point returns): DOS header,
// PE/COFF header, optional header, one .text section; 1 KiB.
Bytes MinimalPe32Plus() {
  Bytes b(0x400, 0);
  b[0] = 'M';
  b[1] = 'Z';
  Put32(b, 0x3c, kLfanew);
  std::memcpy(b.data() + kLfanew, "PE\0\0", 4);
  const size_t coff = kLfanew + 4;
  Put16(b, coff + 0, 0x8664);  // Machine: AMD64
  Put16(b, coff + 2, 1);       // NumberOfSections
  Put16(b, coff + 16, kOptionalHeaderBytes);
  Put16(b, coff + 18, 0x0022);  // EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
  const size_t opt = coff + 20;
  Put16(b, opt + 0, 0x20b);  // PE32+
  b[opt + 2] = 14;           // linker version
  Put32(b, opt + 4, 0x200);  // SizeOfCode
  Put32(b, opt + 16, 0x1000);  // AddressOfEntryPoint
  Put32(b, opt + 20, 0x1000);  // BaseOfCode
  Put64(b, opt + 24, 0x140000000ull);  // ImageBase
  Put32(b, opt + 32, 0x1000);  // SectionAlignment
  Put32(b, opt + 36, 0x200);   // FileAlignment
  Put16(b, opt + 40, 6);       // OS version
  Put16(b, opt + 48, 6);       // subsystem version
  Put32(b, opt + 56, 0x2000);  // SizeOfImage
  Put32(b, opt + 60, 0x200);   // SizeOfHeaders
  Put16(b, opt + 68, 3);       // Subsystem: console
  Put16(b, opt + 70, 0x8160);  // DllCharacteristics: NX, dynamic base, high entropy, TS aware
  Put64(b, opt + 72, 0x100000);
  Put64(b, opt + 80, 0x1000);
  Put64(b, opt + 88, 0x100000);
  Put64(b, opt + 96, 0x1000);
  Put32(b, opt + 108, 16);  // NumberOfRvaAndSizes
  const size_t sec = opt + kOptionalHeaderBytes;
  std::memcpy(b.data() + sec, ".text\0\0\0", 8);
  Put32(b, sec + 8, 0x10);     // VirtualSize
  Put32(b, sec + 12, 0x1000);  // VirtualAddress
  Put32(b, sec + 16, 0x200);   // SizeOfRawData
  Put32(b, sec + 20, kCodeOffset);
  Put32(b, sec + 36, 0x60000020);  // CODE | EXECUTE | READ
  const uint8_t code[] = {0x31, 0xc0, 0xc3};  // xor eax, eax; ret
  std::memcpy(b.data() + kCodeOffset, code, sizeof code);
  return b;
}

void WriteBytes(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::string Thumbprint(const std::string& pem_path, const EVP_MD* md_type = EVP_sha1()) {
  FILE* f = std::fopen(pem_path.c_str(), "r");
  if (f == nullptr) return {};
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return {};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(cert, md_type, md, &n);
  X509_free(cert);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", md[i]);
    hex += buf;
  }
  return hex;
}

// Runs a shell command; the test fails with its output when it does not exit 0.
::testing::AssertionResult Shell(const testing::TempDir& dir, const std::string& cmd) {
  const std::string log_path = dir / "cmd.log";
  const std::string full = cmd + " > " + log_path + " 2>&1";
  if (std::system(full.c_str()) == 0) return ::testing::AssertionSuccess();
  std::ifstream log(log_path);
  std::stringstream s;
  s << log.rdbuf();
  return ::testing::AssertionFailure() << "command failed: " << cmd << "\n" << s.str();
}

// One CA, one code-signing leaf it issued, an unrelated CA; files signed once per suite.
class AuthenticodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    const testing::TempDir& d = *dir_;
    ASSERT_EQ(access("/usr/bin/osslsigncode", X_OK), 0)
        << "osslsigncode is required for the Authenticode tests: run scripts/install-deps.sh "
           "(Debian package osslsigncode)";
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    ASSERT_TRUE(Shell(d, "openssl req -x509 " + ec + " -keyout " + d / "ca.key" + " -out " +
                    d / "ca.pem" + " -days 2 -subj '/CN=Quell Test CA'" +
                    " -addext basicConstraints=critical,CA:TRUE" +
                    " -addext keyUsage=critical,keyCertSign,cRLSign"));
    ASSERT_TRUE(Shell(d, "openssl req -x509 " + ec + " -keyout " + d / "other.key" + " -out " +
                    d / "other.pem" + " -days 2 -subj '/CN=Quell Unrelated CA'" +
                    " -addext basicConstraints=critical,CA:TRUE"));
    {
      std::ofstream ext(d / "leaf.ext");
      ext << "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
             "extendedKeyUsage=codeSigning\n";
    }
    ASSERT_TRUE(Shell(d, "openssl req " + ec + " -keyout " + d / "leaf.key" + " -out " +
                    d / "leaf.csr" + " -subj '/CN=Quell Test Signer'"));
    ASSERT_TRUE(Shell(d, "openssl x509 -req -in " + d / "leaf.csr" + " -CA " + d / "ca.pem" +
                    " -CAkey " + d / "ca.key" + " -set_serial 7 -days 2 -extfile " +
                    d / "leaf.ext" + " -out " + d / "leaf.pem"));
    {
      Bytes chain = ReadBytes(d / "leaf.pem");
      const Bytes ca = ReadBytes(d / "ca.pem");
      chain.insert(chain.end(), ca.begin(), ca.end());
      WriteBytes(d / "chain.pem", chain);
    }
    WriteBytes(d / "plain.exe", MinimalPe32Plus());
    ASSERT_TRUE(Shell(d, "osslsigncode sign -certs " + d / "chain.pem" + " -key " + d / "leaf.key" +
                    " -h sha256 -n 'Quell test' -in " + d / "plain.exe" + " -out " +
                    d / "signed.exe"));
    leaf_ = Thumbprint(d / "leaf.pem");
    ca_ = Thumbprint(d / "ca.pem");
    other_ = Thumbprint(d / "other.pem");
    ASSERT_EQ(leaf_.size(), 40u);
    signed_ = ReadBytes(d / "signed.exe");
    tampered_ = signed_;
    tampered_[kCodeOffset + 1] ^= 0x01;  // one bit of the code section
    WriteBytes(d / "tampered.exe", tampered_);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void Add(const std::string& id, const std::string& type, const std::string& value,
           const std::string& action) {
    quell::v1::Indicator i;
    i.set_id(id);
    i.set_type(type);
    i.set_value(value);
    i.set_action(action);
    i.set_generate_alert(true);
    ASSERT_TRUE(set_.Upsert(i).ok());
  }

  FileIndicatorMatcher Matcher() {
    return FileIndicatorMatcher([this](const std::function<void(const IndicatorSet&)>& fn) { fn(set_); });
  }

  // Matches the file at `name` through an fd, as the exec gate does.
  std::optional<IndicatorMatch> MatchFd(FileIndicatorMatcher& m, const std::string& name) {
    UniqueFd fd(::open((*dir_ / name).c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd.valid());
    auto h = HashFd(fd.get());
    EXPECT_TRUE(h.ok());
    return m.Match({.fd = fd.get(), .sha256 = h->sha256, .sha1 = h->sha1, .md5 = h->md5});
  }

  static std::string Sha256Of(const std::string& name) {
    UniqueFd fd(::open((*dir_ / name).c_str(), O_RDONLY | O_CLOEXEC));
    return HashFd(fd.get())->sha256;
  }

  static testing::TempDir* dir_;
  static std::string leaf_, ca_, other_;
  static Bytes signed_, tampered_;
  FakeClock clock_;
  IndicatorSet set_{clock_};
};

testing::TempDir* AuthenticodeTest::dir_ = nullptr;
std::string AuthenticodeTest::leaf_, AuthenticodeTest::ca_, AuthenticodeTest::other_;
Bytes AuthenticodeTest::signed_, AuthenticodeTest::tampered_;

TEST_F(AuthenticodeTest, ExtractsThumbprintsAndVerifiesTheSignature) {
  auto info = ReadAuthenticodeBytes(signed_);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->signed_pe);
  EXPECT_THAT(info->thumbprints, ::testing::UnorderedElementsAre(leaf_, ca_));
  ASSERT_EQ(info->signatures.size(), 1u);
  const AuthenticodeSignature& s = info->signatures[0];
  EXPECT_TRUE(s.valid) << s.problem;
  EXPECT_EQ(s.signer_thumbprint, leaf_);
  EXPECT_EQ(s.signer_chain, (std::vector<std::string>{leaf_, ca_}));
  EXPECT_TRUE(info->ValidlySignedBy(ca_));
  EXPECT_FALSE(info->ValidlySignedBy(other_));

  // The same through an fd.
  UniqueFd fd(::open((*dir_ / "signed.exe").c_str(), O_RDONLY | O_CLOEXEC));
  auto by_fd = ReadAuthenticodeFd(fd.get());
  ASSERT_TRUE(by_fd.ok()) << by_fd.status().ToString();
  EXPECT_TRUE(by_fd->signatures.at(0).valid);
}

TEST_F(AuthenticodeTest, OneFlippedCodeByteInvalidatesTheSignature) {
  auto info = ReadAuthenticodeBytes(tampered_);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_THAT(info->thumbprints, ::testing::UnorderedElementsAre(leaf_, ca_));  // still listed
  ASSERT_EQ(info->signatures.size(), 1u);
  EXPECT_FALSE(info->signatures[0].valid);
  EXPECT_NE(info->signatures[0].problem.find("image digest mismatch"), std::string::npos)
      << info->signatures[0].problem;
  EXPECT_FALSE(info->ValidlySignedBy(leaf_));
}

TEST_F(AuthenticodeTest, ChecksumFieldIsNotCovered) {
  Bytes b = signed_;
  b[kLfanew + 24 + 64] ^= 0xff;  // CheckSum: excluded from the image digest by the spec
  auto info = ReadAuthenticodeBytes(b);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->signatures.at(0).valid) << info->signatures[0].problem;
}

TEST_F(AuthenticodeTest, ForgedSignedAttributesDoNotVerify) {
  // A byte inside the PKCS#7 near its end (the signature value) changes: the certificates
  // still decode but the signature must not verify.
  Bytes b = signed_;
  b[b.size() - 20] ^= 0x01;
  auto info = ReadAuthenticodeBytes(b);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  ASSERT_EQ(info->signatures.size(), 1u);
  EXPECT_FALSE(info->signatures[0].valid);
  EXPECT_EQ(info->signatures[0].problem, "signed attributes do not verify with the signer's key");
  EXPECT_EQ(info->signatures[0].signer_thumbprint, leaf_);
}

TEST_F(AuthenticodeTest, UnsignedPeIsNotAnError) {
  auto info = ReadAuthenticodeBytes(MinimalPe32Plus());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_FALSE(info->signed_pe);
  EXPECT_TRUE(info->thumbprints.empty());
}

TEST_F(AuthenticodeTest, TruncatedAndGarbageFilesFailCleanly) {
  // Every prefix of the signed file: a clean result or InvalidArgument, never a crash.
  for (size_t n = 0; n < signed_.size(); n += 3) {
    auto info = ReadAuthenticodeBytes(std::span<const uint8_t>(signed_.data(), n));
    if (!info.ok()) {
      EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument) << n;
    } else {
      EXPECT_FALSE(info->ValidlySignedBy(leaf_)) << n;
    }
  }
  // Cut inside the certificate table: the table no longer fits in the file.
  auto cut = ReadAuthenticodeBytes(std::span<const uint8_t>(signed_.data(), signed_.size() - 100));
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("certificate table out of range"), std::string::npos);

  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    Bytes g(1 + rng() % 2048);
    for (auto& x : g) x = static_cast<uint8_t>(rng());
    if (round % 2 == 0) {  // garbage that starts like a PE
      g.resize(std::max<size_t>(g.size(), 64));
      g[0] = 'M';
      g[1] = 'Z';
    }
    auto info = ReadAuthenticodeBytes(g);
    if (info.ok()) {
      EXPECT_FALSE(info->signed_pe && info->signatures.at(0).valid);
    }
  }
  // Random corruption of every byte of the certificate table region, one at a time.
  for (size_t i = 0x400; i < signed_.size(); i += 5) {
    Bytes b = signed_;
    b[i] ^= static_cast<uint8_t>(1 + rng() % 255);
    (void)ReadAuthenticodeBytes(b);
  }
  EXPECT_FALSE(ReadAuthenticodeBytes(Bytes{'M'}).ok());
  EXPECT_EQ(ReadAuthenticodeBytes(Bytes(100, 0)).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(AuthenticodeTest, BlockMatchesLeafOrCaEvenWhenTampered) {
  FileIndicatorMatcher m = Matcher();
  Add("b-ca", "CertificateThumbprint", ca_, "BlockAndRemediate");
  for (const char* file : {"signed.exe", "tampered.exe"}) {
    auto hit = MatchFd(m, file);
    ASSERT_TRUE(hit) << file;
    EXPECT_EQ(hit->id, "b-ca");
    EXPECT_TRUE(hit->blocks());
    EXPECT_EQ(hit->type, IndicatorType::kCertificateThumbprint);
  }
  set_.Clear();
  Add("b-leaf", "CertificateThumbprint", leaf_, "Block");
  auto hit = MatchFd(m, "tampered.exe");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->id, "b-leaf");
  // An unsigned PE and a non-PE file have no certificate to match.
  WriteBytes(*dir_ / "unsigned.exe", MinimalPe32Plus());
  EXPECT_FALSE(MatchFd(m, "unsigned.exe"));
  EXPECT_FALSE(MatchFd(m, "leaf.pem"));
}

TEST_F(AuthenticodeTest, AllowedOnlyWhenTheSignatureIsValidAndTheCertificateInItsChain) {
  FileIndicatorMatcher m = Matcher();
  Add("a-ca", "CertificateThumbprint", ca_, "Allowed");
  auto ok = MatchFd(m, "signed.exe");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->id, "a-ca");
  EXPECT_EQ(ok->action, IndicatorAction::kAllowed);
  EXPECT_FALSE(MatchFd(m, "tampered.exe"));  // invalid signature: not allowed

  // Allowed and Block on the same certificate: allow wins when valid, block otherwise.
  Add("b-ca", "CertificateThumbprint", ca_, "BlockAndRemediate");
  EXPECT_EQ(MatchFd(m, "signed.exe")->id, "a-ca");
  EXPECT_EQ(MatchFd(m, "tampered.exe")->id, "b-ca");

  // An allowed certificate that is not in the signer's chain does nothing.
  set_.Clear();
  Add("a-other", "CertificateThumbprint", other_, "Allowed");
  EXPECT_FALSE(MatchFd(m, "signed.exe"));
}

TEST_F(AuthenticodeTest, Sha256ThumbprintsMatchToo) {
  const std::string ca256 = Thumbprint(*dir_ / "ca.pem", EVP_sha256());
  const std::string leaf256 = Thumbprint(*dir_ / "leaf.pem", EVP_sha256());
  ASSERT_EQ(ca256.size(), 64u);
  auto info = ReadAuthenticodeBytes(signed_);
  ASSERT_TRUE(info.ok());
  EXPECT_THAT(info->thumbprints_sha256, ::testing::UnorderedElementsAre(leaf256, ca256));
  EXPECT_TRUE(info->ValidlySignedBy(ca256));

  FileIndicatorMatcher m = Matcher();
  Add("a-ca256", "CertificateThumbprint", ca256, "Allowed");
  EXPECT_EQ(MatchFd(m, "signed.exe")->id, "a-ca256");
  EXPECT_EQ(MatchFd(m, "signed.exe")->value, ca256);
  EXPECT_FALSE(MatchFd(m, "tampered.exe"));
  Add("b-leaf256", "CertificateThumbprint", leaf256, "BlockAndRemediate");
  EXPECT_EQ(MatchFd(m, "tampered.exe")->id, "b-leaf256");
  // A SHA-1 thumbprint never matches a SHA-256 indicator's first 20 bytes.
  EXPECT_FALSE(set_.MatchCertificate(leaf256.substr(0, 40)));
}

TEST_F(AuthenticodeTest, HashIndicatorIsMoreSpecificThanCertificate) {
  FileIndicatorMatcher m = Matcher();
  Add("a-ca", "CertificateThumbprint", ca_, "Allowed");
  Add("b-hash", "FileSha256", Sha256Of("signed.exe"), "Block");
  EXPECT_EQ(MatchFd(m, "signed.exe")->id, "b-hash");
  set_.Clear();
  Add("b-ca", "CertificateThumbprint", ca_, "BlockAndRemediate");
  Add("a-hash", "FileSha256", Sha256Of("tampered.exe"), "Allowed");
  EXPECT_EQ(MatchFd(m, "tampered.exe")->id, "a-hash");
}

TEST_F(AuthenticodeTest, SignatureIsReadOnlyWhenNeededAndOncePerContent) {
  FileIndicatorMatcher m = Matcher();
  Add("b-hash", "FileSha256", std::string(64, 'a'), "Block");
  EXPECT_FALSE(MatchFd(m, "signed.exe"));
  EXPECT_EQ(m.GetStats().signatures_read, 0u);  // no certificate indicators
  Add("b-ca", "CertificateThumbprint", ca_, "BlockAndRemediate");
  EXPECT_TRUE(MatchFd(m, "signed.exe"));
  EXPECT_TRUE(MatchFd(m, "signed.exe"));
  EXPECT_EQ(m.GetStats().signatures_read, 1u);
  EXPECT_EQ(m.GetStats().cache_hits, 1u);
  set_.Remove("b-ca");
  EXPECT_FALSE(MatchFd(m, "signed.exe"));  // the cache holds signatures, not verdicts
}

TEST_F(AuthenticodeTest, PathMatchRequiresTheFileToStillHaveTheHash) {
  FileIndicatorMatcher m = Matcher();
  Add("a-ca", "CertificateThumbprint", ca_, "Allowed");
  const std::string path = *dir_ / "signed.exe";
  auto hit = m.Match({.path = path, .sha256 = Sha256Of("signed.exe")});
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->id, "a-ca");
  // A detection about other content at that path is not vouched for by the signed file.
  EXPECT_FALSE(m.Match({.path = path, .sha256 = std::string(64, 'e')}));
}

TEST(IndicatorSetCertificateTest, MatchCertificateAndCounts) {
  FakeClock clock;
  IndicatorSet set(clock);
  EXPECT_FALSE(set.HasCertificates());
  const std::string thumb = "0123456789ABCDEF0123456789abcdef01234567";
  auto add = [&](const std::string& id, const std::string& action, int64_t expires = 0) {
    quell::v1::Indicator i;
    i.set_id(id);
    i.set_type("CertificateThumbprint");
    i.set_value(thumb);
    i.set_action(action);
    i.set_expiration_unix_ms(expires);
    ASSERT_TRUE(set.Upsert(i).ok());
  };
  add("allow", "Allowed");
  add("block", "BlockAndRemediate", clock.Now() + 1000);
  EXPECT_TRUE(set.HasCertificates());
  EXPECT_EQ(set.MatchCertificate(thumb)->id, "allow");  // allow wins
  EXPECT_EQ(set.MatchCertificate("0123456789abcdef0123456789ABCDEF01234567", false)->id, "block");
  EXPECT_EQ(set.MatchCertificate(thumb)->value, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_FALSE(set.MatchCertificate(std::string(40, '9')));
  EXPECT_FALSE(set.MatchCertificate("not hex"));
  EXPECT_FALSE(set.MatchFile("", thumb, ""));  // a thumbprint is not a file SHA-1
  EXPECT_EQ(set.CountFileBlocks(), 1u);  // the exec gate must open for certificate blocks
  clock.Advance(1000);
  EXPECT_FALSE(set.MatchCertificate(thumb, false));  // expired
  EXPECT_EQ(set.CountFileBlocks(), 0u);
  EXPECT_TRUE(set.Remove("allow"));
  EXPECT_TRUE(set.Remove("block"));
  EXPECT_FALSE(set.HasCertificates());
}

class RecordingSink final : public DetectionSink {
 public:
  void Report(Detection d) override { got.push_back(std::move(d)); }
  std::vector<Detection> got;
};

Detection ScanHit(const std::string& dir, const std::string& name, const std::string& sha256) {
  Detection d;
  d.detector_id = "quell.av.yara";
  d.title = "'rule' YARA rule matched in " + name;
  d.evidence = nlohmann::json::array(
      {{{"@odata.type", "#microsoft.graph.security.fileEvidence"},
        {"fileDetails", {{"fileName", name}, {"filePath", dir}, {"sha256", sha256}}}}});
  return d;
}

TEST_F(AuthenticodeTest, AllowedCertificateSuppressesScanDetectionsOfValidlySignedFiles) {
  FileIndicatorMatcher m = Matcher();
  Add("a-ca", "CertificateThumbprint", ca_, "Allowed");
  RecordingSink next;
  AllowedFileFilter filter(next, [&m](const FileToMatch& f) { return m.Match(f); });
  filter.Report(ScanHit(dir_->path(), "signed.exe", Sha256Of("signed.exe")));
  filter.Report(ScanHit(dir_->path(), "tampered.exe", Sha256Of("tampered.exe")));
  ASSERT_EQ(next.got.size(), 1u);
  EXPECT_EQ(filter.suppressed(), 1u);
  EXPECT_NE(next.got[0].title.find("tampered.exe"), std::string::npos);
}

}  // namespace
}  // namespace quell::agent
