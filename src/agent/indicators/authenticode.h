// Authenticode: the embedded signature of a PE file (a Windows executable, DLL or EFI binary),
// read for CertificateThumbprint indicators. Linux has no embedded signature for ELF files;
// signed PE files reach Linux hosts on file servers, Samba shares, Wine and binfmt_misc
// executions and in EFI system partitions.
//
// What is read (all offsets are bounds-checked against the file size; every size is capped):
//   DOS header     "MZ", e_lfanew (u32 at 0x3c, < 64 KiB)
//   PE header      "PE\0\0" at e_lfanew, then the 20-byte COFF header (SizeOfOptionalHeader
//                  at +16), then the optional header: magic 0x10b (PE32) or 0x20b (PE32+);
//                  CheckSum at +64; NumberOfRvaAndSizes at +92 / +108; data directories at
//                  +96 / +112, 8 bytes each ({u32 address, u32 size}).
//   security dir   data directory 4: a FILE OFFSET (not an RVA) and the size of the
//                  certificate table, a list of WIN_CERTIFICATE {u32 dwLength, u16 wRevision
//                  (0x0200), u16 wCertificateType (2 = PKCS#7 SignedData), bytes}, each padded
//                  to 8 bytes.
//   PKCS#7         SignedData whose content is SpcIndirectDataContent (1.3.6.1.4.1.311.2.1.4):
//                  SEQUENCE { SpcAttributeTypeAndOptionalValue, DigestInfo { alg, digest } }.
//
// Validity (no trust in public roots: a pinned thumbprint is the trust anchor):
//   1. the image digest equals DigestInfo.digest, where the image digest is the hash (the
//      DigestInfo's algorithm) of the whole file except the CheckSum field, the security
//      directory entry and the certificate table. This is the byte-range form that
//      osslsigncode, sbsigntools and pefile use; for a well-formed file (sections laid out
//      after the headers, the certificate table last) it equals the spec's section-by-section
//      form;
//   2. exactly one SignerInfo; its signer certificate is among the embedded ones; the
//      messageDigest signed attribute equals the hash of SpcIndirectDataContent's value, and
//      the signature over the signed attributes verifies with the signer's public key
//      (PKCS7_signatureVerify).
// The signer chain is the signer, then each embedded certificate that issued the previous one
// AND whose key verifies its signature, up to a self-signed one (at most 8 links).
//
// Not read: nested signatures (unauthenticated attribute 1.3.6.1.4.1.311.2.4.1), timestamps,
// catalogs, revocation. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell::agent {

// One WIN_CERTIFICATE entry's signature.
struct AuthenticodeSignature {
  std::string signer_thumbprint;          // lowercase SHA-1 hex; empty when not found
  std::vector<std::string> signer_chain;  // signer first, then verified issuers (embedded)
  std::vector<std::string> signer_chain_sha256;  // the same certificates, SHA-256 thumbprints
  bool valid = false;                     // image digest and signed attributes verified
  std::string problem;                    // why not valid (empty when valid)
};

struct AuthenticodeInfo {
  bool signed_pe = false;  // a certificate table with at least one PKCS#7 entry was present
  // Every certificate embedded in any entry, lowercase SHA-1 hex, deduplicated, in the
  // order stored (a DER SET OF: sorted by encoding, not signer first).
  std::vector<std::string> thumbprints;
  std::vector<std::string> thumbprints_sha256;  // the same certificates, SHA-256, same order
  std::vector<AuthenticodeSignature> signatures;  // one per WIN_CERTIFICATE entry

  // True when a valid signature has `thumbprint` (lowercase hex, SHA-1 or SHA-256) in its
  // signer chain.
  bool ValidlySignedBy(std::string_view thumbprint) const;
};

struct AuthenticodeLimits {
  // Larger files are not hashed: their certificates are still listed (a Block indicator
  // still matches), but no signature is valid.
  uint64_t max_file_bytes = 512ull << 20;
  uint32_t max_certificate_table = 4u << 20;  // a larger table: InvalidArgument
  size_t max_entries = 8;                   // WIN_CERTIFICATE entries read
};

// Random access to the file's bytes: fills `out` with exactly out.size() bytes at `offset`,
// or returns an error. REQUIRES: offset + out.size() <= the size given with it.
using ReadAt = std::function<Status(uint64_t offset, std::span<uint8_t> out)>;

// True when `head` (the first bytes of a file; 2 are enough) starts like a PE file ("MZ").
bool LooksLikePe(std::span<const uint8_t> head);

// Parses and verifies. InvalidArgument: not a PE file, or a malformed PE or certificate
// table (the caller treats it as "no certificate"). An unsigned PE is not an error
// (signed_pe = false). A PKCS#7 that does not decode makes its entry invalid but keeps the
// others.
Result<AuthenticodeInfo> ReadAuthenticode(uint64_t size, const ReadAt& read,
                                          const AuthenticodeLimits& limits = {});
Result<AuthenticodeInfo> ReadAuthenticodeBytes(std::span<const uint8_t> bytes,
                                               const AuthenticodeLimits& limits = {});
// Reads through pread (the fd's offset is untouched).
Result<AuthenticodeInfo> ReadAuthenticodeFd(int fd, const AuthenticodeLimits& limits = {});

}  // namespace quell::agent
