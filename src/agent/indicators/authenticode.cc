#include "agent/indicators/authenticode.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

namespace quell::agent {
namespace {

constexpr uint32_t kMaxLfanew = 0x10000;  // e_lfanew beyond this is treated as malformed
constexpr uint32_t kDosHeaderBytes = 64;
constexpr uint32_t kLfanewOffset = 0x3c;
constexpr uint32_t kCoffHeaderBytes = 24;  // "PE\0\0" + 20-byte COFF header
constexpr uint16_t kPe32 = 0x10b, kPe32Plus = 0x20b;
constexpr uint32_t kCheckSumOffset = 64;  // in the optional header, PE32 and PE32+
constexpr uint32_t kSecurityDirIndex = 4;
constexpr uint16_t kWinCertRevision2 = 0x0200, kWinCertTypePkcsSignedData = 0x0002;
constexpr char kSpcIndirectDataOid[] = "1.3.6.1.4.1.311.2.1.4";
constexpr int kMaxChainLinks = 8;
constexpr size_t kHashChunk = 64 * 1024;

uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t U32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

struct Pkcs7Free {
  void operator()(PKCS7* p) const { PKCS7_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct ObjFree {
  void operator()(ASN1_OBJECT* o) const { ASN1_OBJECT_free(o); }
};

std::string Hex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

std::string Thumbprint(const X509* cert, const EVP_MD* md_type = EVP_sha1()) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, md_type, md, &n) != 1) return {};
  return Hex(md, n);
}

// Where the parts of a PE file that Authenticode cares about are (file offsets).
struct PeLayout {
  uint64_t checksum = 0;   // 4 bytes
  uint64_t secdir = 0;     // 8 bytes: the security data directory entry
  uint64_t cert_table = 0;  // 0 = unsigned
  uint32_t cert_size = 0;
};

Status Malformed(const std::string& what) { return InvalidArgument("malformed PE file: " + what); }

Result<PeLayout> ParsePe(uint64_t size, const ReadAt& read, const AuthenticodeLimits& limits) {
  if (size < kDosHeaderBytes) return InvalidArgument("not a PE file (too short)");
  uint8_t dos[kDosHeaderBytes];
  QUELL_RETURN_IF_ERROR(read(0, dos));
  if (!LooksLikePe(dos)) return InvalidArgument("not a PE file (no MZ)");
  const uint32_t lfanew = U32(dos + kLfanewOffset);
  if (lfanew < 4 || lfanew > kMaxLfanew || uint64_t{lfanew} + kCoffHeaderBytes > size) {
    return Malformed("e_lfanew out of range");
  }
  uint8_t coff[kCoffHeaderBytes];
  QUELL_RETURN_IF_ERROR(read(lfanew, coff));
  if (std::memcmp(coff, "PE\0\0", 4) != 0) return InvalidArgument("not a PE file (no PE signature)");
  const uint16_t opt_size = U16(coff + 4 + 16);
  const uint64_t opt = uint64_t{lfanew} + kCoffHeaderBytes;
  if (opt + opt_size > size || opt_size < 2) return Malformed("optional header out of range");
  std::vector<uint8_t> header(opt_size);
  QUELL_RETURN_IF_ERROR(read(opt, header));
  const uint16_t magic = U16(header.data());
  uint32_t count_at, dirs_at;
  if (magic == kPe32) {
    count_at = 92;
    dirs_at = 96;
  } else if (magic == kPe32Plus) {
    count_at = 108;
    dirs_at = 112;
  } else {
    return Malformed("unknown optional header magic");
  }
  const uint32_t secdir_at = dirs_at + kSecurityDirIndex * 8;
  if (opt_size < secdir_at + 8) return Malformed("optional header too short for data directory 4");
  if (U32(header.data() + count_at) <= kSecurityDirIndex) {
    return PeLayout{.checksum = opt + kCheckSumOffset, .secdir = opt + secdir_at};  // unsigned
  }
  PeLayout layout{.checksum = opt + kCheckSumOffset, .secdir = opt + secdir_at};
  const uint32_t address = U32(header.data() + secdir_at);
  const uint32_t table_size = U32(header.data() + secdir_at + 4);
  if (address == 0 || table_size == 0) return layout;  // unsigned
  if (table_size > limits.max_certificate_table) return Malformed("certificate table too large");
  if (address < layout.secdir + 8 || uint64_t{address} + table_size > size) {
    return Malformed("certificate table out of range");
  }
  layout.cert_table = address;
  layout.cert_size = table_size;
  return layout;
}

// One DER TLV (definite lengths only, as DER requires).
struct Tlv {
  uint8_t tag = 0;
  std::span<const uint8_t> value, whole;
};

// Reads one TLV from the front of `in` and advances past it; false when malformed.
bool ReadTlv(std::span<const uint8_t>& in, Tlv& out) {
  if (in.size() < 2 || (in[0] & 0x1f) == 0x1f) return false;
  size_t pos = 1;
  size_t len = in[pos++];
  if (len & 0x80) {
    const size_t n = len & 0x7f;
    if (n == 0 || n > 4 || in.size() - pos < n) return false;
    len = 0;
    for (size_t i = 0; i < n; ++i) len = len << 8 | in[pos++];
  }
  if (len > in.size() - pos) return false;
  out = Tlv{.tag = in[0], .value = in.subspan(pos, len), .whole = in.subspan(0, pos + len)};
  in = in.subspan(pos + len);
  return true;
}

// SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue,
//   messageDigest DigestInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING } }
struct IndirectData {
  std::span<const uint8_t> value;  // the SEQUENCE's content: what messageDigest covers
  const EVP_MD* md = nullptr;
  std::span<const uint8_t> digest;
};

Result<IndirectData> ParseIndirectData(std::span<const uint8_t> der) {
  const Status bad = InvalidArgument("malformed SpcIndirectDataContent");
  Tlv outer, data, digest_info, alg, digest, oid;
  if (!ReadTlv(der, outer) || outer.tag != 0x30) return bad;
  std::span<const uint8_t> body = outer.value;
  if (!ReadTlv(body, data) || data.tag != 0x30 || !ReadTlv(body, digest_info) ||
      digest_info.tag != 0x30) {
    return bad;
  }
  std::span<const uint8_t> di = digest_info.value;
  if (!ReadTlv(di, alg) || alg.tag != 0x30 || !ReadTlv(di, digest) || digest.tag != 0x04) return bad;
  std::span<const uint8_t> a = alg.value;
  if (!ReadTlv(a, oid) || oid.tag != 0x06) return bad;
  const unsigned char* p = oid.whole.data();
  std::unique_ptr<ASN1_OBJECT, ObjFree> obj(
      d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(oid.whole.size())));
  if (!obj) return bad;
  const EVP_MD* md = EVP_get_digestbyobj(obj.get());
  if (md == nullptr) return InvalidArgument("unsupported image digest algorithm");
  if (digest.value.size() != static_cast<size_t>(EVP_MD_get_size(md))) return bad;
  return IndirectData{.value = outer.value, .md = md, .digest = digest.value};
}

// The Authenticode image digest: every byte of the file except the CheckSum, the security
// directory entry and the certificate table.
Result<std::vector<uint8_t>> ImageDigest(uint64_t size, const ReadAt& read, const PeLayout& pe,
                                         const EVP_MD* md) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) return Internal("digest init failed");
  std::vector<uint8_t> buf(kHashChunk);
  auto hash = [&](uint64_t from, uint64_t to) -> Status {
    while (from < to) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(to - from, buf.size()));
      QUELL_RETURN_IF_ERROR(read(from, std::span<uint8_t>(buf.data(), n)));
      if (EVP_DigestUpdate(ctx.get(), buf.data(), n) != 1) return Internal("digest update failed");
      from += n;
    }
    return Status::Ok();
  };
  QUELL_RETURN_IF_ERROR(hash(0, pe.checksum));
  QUELL_RETURN_IF_ERROR(hash(pe.checksum + 4, pe.secdir));
  QUELL_RETURN_IF_ERROR(hash(pe.secdir + 8, pe.cert_table));
  QUELL_RETURN_IF_ERROR(hash(pe.cert_table + pe.cert_size, size));
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &n) != 1) return Internal("digest final failed");
  out.resize(n);
  return out;
}

// The signer, then each embedded certificate that issued the previous one and whose key
// verifies its signature.
std::vector<X509*> SignerChain(X509* signer, STACK_OF(X509)* certs) {
  std::vector<X509*> chain{signer};
  X509* cur = signer;
  for (int link = 0; link < kMaxChainLinks; ++link) {
    if (X509_NAME_cmp(X509_get_subject_name(cur), X509_get_issuer_name(cur)) == 0) break;
    X509* next = nullptr;
    for (int i = 0; i < sk_X509_num(certs); ++i) {
      X509* cand = sk_X509_value(certs, i);
      EVP_PKEY* key = X509_get0_pubkey(cand);
      if (cand != cur && key != nullptr && X509_check_issued(cand, cur) == X509_V_OK &&
          X509_verify(cur, key) == 1) {
        next = cand;
        break;
      }
    }
    if (next == nullptr) break;
    if (std::find(chain.begin(), chain.end(), next) != chain.end()) break;  // a loop
    chain.push_back(next);
    cur = next;
  }
  return chain;
}

class Reader {
 public:
  Reader(uint64_t size, const ReadAt& read, const AuthenticodeLimits& limits, const PeLayout& pe)
      : size_(size), read_(read), limits_(limits), pe_(pe) {}

  // Lists the entry's certificates into `info` and evaluates its signature.
  AuthenticodeSignature Evaluate(std::span<const uint8_t> der, AuthenticodeInfo& info) {
    AuthenticodeSignature sig;
    const unsigned char* p = der.data();
    std::unique_ptr<PKCS7, Pkcs7Free> p7(d2i_PKCS7(nullptr, &p, static_cast<long>(der.size())));
    if (!p7) return Problem(sig, "PKCS#7 does not decode");
    if (!PKCS7_type_is_signed(p7.get()) || p7->d.sign == nullptr) {
      return Problem(sig, "PKCS#7 is not SignedData");
    }
    STACK_OF(X509)* certs = p7->d.sign->cert;
    for (int i = 0; i < sk_X509_num(certs); ++i) {
      std::string t = Thumbprint(sk_X509_value(certs, i));
      if (!t.empty() && std::find(info.thumbprints.begin(), info.thumbprints.end(), t) ==
                            info.thumbprints.end()) {
        info.thumbprints.push_back(std::move(t));
        info.thumbprints_sha256.push_back(Thumbprint(sk_X509_value(certs, i), EVP_sha256()));
      }
    }
    STACK_OF(PKCS7_SIGNER_INFO)* signers = PKCS7_get_signer_info(p7.get());
    if (sk_PKCS7_SIGNER_INFO_num(signers) != 1) return Problem(sig, "not exactly one signer");
    PKCS7_SIGNER_INFO* si = sk_PKCS7_SIGNER_INFO_value(signers, 0);
    if (si == nullptr || si->issuer_and_serial == nullptr) return Problem(sig, "no signer identity");
    X509* signer = X509_find_by_issuer_and_serial(certs, si->issuer_and_serial->issuer,
                                                  si->issuer_and_serial->serial);
    if (signer == nullptr) return Problem(sig, "signer certificate not embedded");
    sig.signer_thumbprint = Thumbprint(signer);
    for (X509* link : SignerChain(signer, certs)) {
      sig.signer_chain.push_back(Thumbprint(link));
      sig.signer_chain_sha256.push_back(Thumbprint(link, EVP_sha256()));
    }

    PKCS7* contents = p7->d.sign->contents;
    char oid[64] = {};
    if (contents == nullptr || contents->type == nullptr ||
        OBJ_obj2txt(oid, sizeof oid, contents->type, 1) <= 0 ||
        std::strcmp(oid, kSpcIndirectDataOid) != 0 || contents->d.other == nullptr ||
        contents->d.other->type != V_ASN1_SEQUENCE || contents->d.other->value.sequence == nullptr) {
      return Problem(sig, "content is not SpcIndirectDataContent");
    }
    const ASN1_STRING* seq = contents->d.other->value.sequence;
    auto indirect = ParseIndirectData(
        std::span<const uint8_t>(ASN1_STRING_get0_data(seq), static_cast<size_t>(ASN1_STRING_length(seq))));
    if (!indirect.ok()) return Problem(sig, indirect.status().message());

    if (size_ > limits_.max_file_bytes) return Problem(sig, "file too large to verify");
    auto image = Digest(indirect->md);
    if (!image.ok()) return Problem(sig, "image digest: " + image.status().message());
    if (image->size() != indirect->digest.size() ||
        CRYPTO_memcmp(image->data(), indirect->digest.data(), image->size()) != 0) {
      return Problem(sig, "image digest mismatch (the file changed after signing)");
    }

    const EVP_MD* si_md = EVP_get_digestbyobj(si->digest_alg->algorithm);
    if (si_md == nullptr) return Problem(sig, "unsupported signer digest algorithm");
    std::unique_ptr<BIO, BioFree> chain(BIO_new(BIO_f_md()));
    BIO* sink = BIO_new(BIO_s_null());
    if (!chain || sink == nullptr) {
      BIO_free(sink);
      return Problem(sig, "out of memory");
    }
    BIO_push(chain.get(), sink);
    if (BIO_set_md(chain.get(), si_md) != 1 ||
        BIO_write(chain.get(), indirect->value.data(), static_cast<int>(indirect->value.size())) !=
            static_cast<int>(indirect->value.size())) {
      return Problem(sig, "digest of SpcIndirectDataContent failed");
    }
    if (PKCS7_signatureVerify(chain.get(), p7.get(), si, signer) != 1) {
      return Problem(sig, "signed attributes do not verify with the signer's key");
    }
    sig.valid = true;
    return sig;
  }

 private:
  static AuthenticodeSignature Problem(AuthenticodeSignature& sig, std::string why) {
    sig.valid = false;
    sig.problem = std::move(why);
    return sig;
  }

  Result<std::vector<uint8_t>> Digest(const EVP_MD* md) {
    const int nid = EVP_MD_get_type(md);
    if (auto it = digests_.find(nid); it != digests_.end()) return it->second;
    QUELL_ASSIGN_OR_RETURN(std::vector<uint8_t> d, ImageDigest(size_, read_, pe_, md));
    digests_[nid] = d;
    return d;
  }

  uint64_t size_;
  const ReadAt& read_;
  const AuthenticodeLimits& limits_;
  const PeLayout& pe_;
  std::map<int, std::vector<uint8_t>> digests_;  // image digest by algorithm
};

}  // namespace

bool AuthenticodeInfo::ValidlySignedBy(std::string_view thumbprint) const {
  for (const AuthenticodeSignature& s : signatures) {
    if (!s.valid) continue;
    const auto& chain = thumbprint.size() == 64 ? s.signer_chain_sha256 : s.signer_chain;
    for (const std::string& t : chain) {
      if (t == thumbprint) return true;
    }
  }
  return false;
}

bool LooksLikePe(std::span<const uint8_t> head) {
  return head.size() >= 2 && head[0] == 'M' && head[1] == 'Z';
}

Result<AuthenticodeInfo> ReadAuthenticode(uint64_t size, const ReadAt& read,
                                          const AuthenticodeLimits& limits) {
  QUELL_ASSIGN_OR_RETURN(PeLayout pe, ParsePe(size, read, limits));
  AuthenticodeInfo info;
  if (pe.cert_table == 0) return info;
  std::vector<uint8_t> table(pe.cert_size);
  QUELL_RETURN_IF_ERROR(read(pe.cert_table, table));
  Reader reader(size, read, limits, pe);
  size_t pos = 0;
  while (table.size() - pos >= 8 && info.signatures.size() < limits.max_entries) {
    const uint32_t length = U32(table.data() + pos);
    const uint16_t revision = U16(table.data() + pos + 4);
    const uint16_t type = U16(table.data() + pos + 6);
    if (length < 8 || length > table.size() - pos) return Malformed("WIN_CERTIFICATE length out of range");
    if (revision == kWinCertRevision2 && type == kWinCertTypePkcsSignedData) {
      info.signed_pe = true;
      info.signatures.push_back(
          reader.Evaluate(std::span<const uint8_t>(table.data() + pos + 8, length - 8), info));
    }
    pos += (static_cast<size_t>(length) + 7) & ~size_t{7};
    if (pos >= table.size()) break;
  }
  return info;
}

Result<AuthenticodeInfo> ReadAuthenticodeBytes(std::span<const uint8_t> bytes,
                                               const AuthenticodeLimits& limits) {
  return ReadAuthenticode(
      bytes.size(),
      [bytes](uint64_t offset, std::span<uint8_t> out) -> Status {
        if (offset > bytes.size() || out.size() > bytes.size() - offset) {
          return InvalidArgument("read past the end");
        }
        std::memcpy(out.data(), bytes.data() + offset, out.size());
        return Status::Ok();
      },
      limits);
}

Result<AuthenticodeInfo> ReadAuthenticodeFd(int fd, const AuthenticodeLimits& limits) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return ErrnoStatus("fstat");
  if (!S_ISREG(st.st_mode)) return InvalidArgument("not a regular file");
  return ReadAuthenticode(
      static_cast<uint64_t>(st.st_size),
      [fd](uint64_t offset, std::span<uint8_t> out) -> Status {
        size_t done = 0;
        while (done < out.size()) {
          const ssize_t n = pread(fd, out.data() + done, out.size() - done,
                                  static_cast<off_t>(offset + done));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return ErrnoStatus("pread");
          if (n == 0) return Unavailable("file shrank while being read");
          done += static_cast<size_t>(n);
        }
        return Status::Ok();
      },
      limits);
}

}  // namespace quell::agent
