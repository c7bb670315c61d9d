// IndicatorSet: the agent's in-memory indicators (file hashes, IP addresses and CIDR ranges,
// domains, URLs), built for 1,000,000 entries in well under 100 MiB with O(1) lookup.
//
// Layout (why it is small): one fixed 48-byte Record per indicator holds the value in binary
// (a SHA-256 as 32 raw bytes, an IP as 16 bytes with a prefix length, v4 as ::ffff:a.b.c.d);
// ids, titles and domain/URL text live in an append-only chunked text arena (compacted when
// more than half of it is garbage); two open-addressing indexes of 4-byte record numbers map
// id -> record and (kind, key) -> records. Expiry is kept in whole seconds.
//
// Lookups (each a bounded number of hash probes, independent of the set's size):
//   MatchFile   sha256, then sha1, then md5 (the longer hash is more specific, as Defender);
//   MatchIp     the longest matching prefix among the prefix lengths present (<= 129 probes);
//   MatchDomain the name itself, then each parent (a.b.example.com -> b.example.com ->
//               example.com -> com): DomainName indicators and the host part of Url indicators
//               (HTTPS paths are invisible to the agent: URL indicators act on their host).
// Among indicators with the same value the precedence is Allowed > Audit > BlockAndRemediate
// > Block (Defender's "allow wins"). An expired indicator (expiration <= Now()) is skipped by
// every lookup without any message; Purge() drops it for good.
//
// Not thread-safe (IndicatorStore serialises access).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "quell/v1/agent.pb.h"

namespace quell::agent {

enum class IndicatorType : uint8_t {
  kFileSha1,
  kFileSha256,
  kFileMd5,
  kIpAddress,
  kDomainName,
  kUrl,
  kCertificateThumbprint,
};
enum class IndicatorAction : uint8_t { kAllowed, kAudit, kBlock, kBlockAndRemediate };

std::string_view IndicatorTypeName(IndicatorType type);
Result<IndicatorType> ParseIndicatorType(std::string_view name);
std::string_view IndicatorActionName(IndicatorAction action);
// Also accepts "Warn" (as Audit) and "AlertAndBlock" (as Block), Defender's older names.
Result<IndicatorAction> ParseIndicatorAction(std::string_view name);

// A copy of one indicator, as lookups return it.
struct IndicatorMatch {
  std::string id;
  IndicatorType type = IndicatorType::kFileSha256;
  std::string value;  // normalised: lowercase hex, "10.0.0.0/8", "example.com", the full URL
  IndicatorAction action = IndicatorAction::kAudit;
  std::string severity;  // Informational | Low | Medium | High
  std::string title;     // at most 255 bytes are kept
  bool generate_alert = false;
  UnixMillis expires = 0;  // 0 = never; whole seconds

  bool blocks() const {
    return action == IndicatorAction::kBlock || action == IndicatorAction::kBlockAndRemediate;
  }
  quell::v1::Indicator ToProto() const;
};

// One IP range as it is enforced (both the v4 and the v6 form are 16-byte keys internally).
struct IpRange {
  bool v6 = false;
  std::string cidr;  // "10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"
  auto operator<=>(const IpRange&) const = default;
};

// Parses "a.b.c.d", "a.b.c.d/n", "v6" or "v6/n" (host bits must be zero for a CIDR) into the
// normalised form ("a.b.c.d/32" for a single v4 address). InvalidArgument otherwise.
Result<IpRange> ParseIpRange(std::string_view text);
// The lowercase host of a URL ("https://User@Ex.com:8443/p?q" -> "ex.com"); also accepts a
// bare "ex.com/path". InvalidArgument when there is no host.
Result<std::string> UrlHost(std::string_view url);
// Lowercase, without a trailing dot; InvalidArgument for an empty or malformed name.
Result<std::string> NormaliseDomain(std::string_view name);

class IndicatorSet {
 public:
  // `clock` must outlive the set; it decides expiry.
  explicit IndicatorSet(const Clock& clock);
  ~IndicatorSet();
  IndicatorSet(IndicatorSet&&) noexcept;
  IndicatorSet& operator=(IndicatorSet&&) noexcept;

  // Adds or replaces (by id) one indicator. InvalidArgument for an unknown type or action or
  // a value that does not parse as its type; the set is unchanged then.
  Status Upsert(const quell::v1::Indicator& indicator);
  // False when there was no such id.
  bool Remove(std::string_view id);
  void Clear();
  // Drops expired indicators; returns how many.
  size_t Purge();

  // Indicators held, including expired ones not yet purged.
  size_t size() const;
  // Bytes of heap this set holds (records, indexes, text arena), for the memory budget.
  size_t MemoryBytes() const;

  std::optional<IndicatorMatch> FindById(std::string_view id) const;
  // Any of the hex digests may be empty (not computed). Case-insensitive.
  std::optional<IndicatorMatch> MatchFile(std::string_view sha256, std::string_view sha1,
                                          std::string_view md5) const;
  // `address` is a literal v4 or v6 address (v4-mapped v6 matches v4 ranges).
  std::optional<IndicatorMatch> MatchIp(std::string_view address) const;
  std::optional<IndicatorMatch> MatchDomain(std::string_view name) const;
  // A CertificateThumbprint indicator for this certificate thumbprint: SHA-1 (40 hex digits)
  // or SHA-256 (64), any case, each matching indicators given in the same form. Only the exact value: whether the certificate counts (signer, chain, valid
  // signature) is decided by the caller (file_indicator_match.h), which passes
  // include_allowed = false when an Allowed one would not count (the next strongest is found).
  std::optional<IndicatorMatch> MatchCertificate(std::string_view thumbprint,
                                                 bool include_allowed = true) const;
  // True when any CertificateThumbprint indicator is held (O(1)): callers skip reading a
  // file's signature otherwise.
  bool HasCertificates() const;
  // The strongest live IpAddress indicator for exactly this range ("10.0.0.0/8").
  std::optional<IndicatorMatch> FindIpRange(std::string_view cidr) const;

  // Every live (not expired) indicator, in no particular order.
  void ForEach(const std::function<void(const IndicatorMatch&)>& fn) const;
  // Counts of live indicators that need an enforcement point (expired ones excluded).
  // File blocks: hash and CertificateThumbprint indicators with Block/BlockAndRemediate
  // (both are enforced by the exec gate).
  size_t CountFileBlocks() const;
  // Live file-hash (not certificate) indicators with BlockAndRemediate: while there are any,
  // written files are hashed as they are closed (sensors/written_file_watch.h).
  size_t CountFileRemediations() const;
  // The ranges of live IpAddress indicators with Block/BlockAndRemediate.
  std::vector<IpRange> BlockedIpRanges() const;
  // Live DomainName and Url indicators with Audit, Block or BlockAndRemediate: while there
  // are any, the DNS filter runs and the host's DNS is steered to it.
  size_t CountDomainEnforced() const;
  // The earliest expiry among live indicators (0 = none expires): when enforcement built
  // from the set must be rebuilt.
  UnixMillis NextExpiry() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace quell::agent
