#include "agent/indicators/indicator_set.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace quell::agent {
namespace {

// ---- names ----------------------------------------------------------------------------

constexpr std::array<std::string_view, 7> kTypeNames = {
    "FileSha1", "FileSha256", "FileMd5", "IpAddress", "DomainName", "Url", "CertificateThumbprint"};
constexpr std::array<std::string_view, 4> kActionNames = {"Allowed", "Audit", "Block",
                                                          "BlockAndRemediate"};
constexpr std::array<std::string_view, 5> kSeverities = {"", "Informational", "Low", "Medium",
                                                         "High"};

// Lower is stronger: the precedence among indicators with the same value.
int Rank(IndicatorAction a) {
  switch (a) {
    case IndicatorAction::kAllowed: return 0;
    case IndicatorAction::kAudit: return 1;
    case IndicatorAction::kBlockAndRemediate: return 2;
    case IndicatorAction::kBlock: return 3;
  }
  return 4;
}

// ---- value encodings ------------------------------------------------------------------

// Key kinds of the value index: each hash type its own, IPs one, DNS names (DomainName and
// the hosts of Url indicators) one.
enum Kind : uint8_t { kKindSha1, kKindSha256, kKindMd5, kKindThumb, kKindIp, kKindDns };

Kind KindOf(IndicatorType t) {
  switch (t) {
    case IndicatorType::kFileSha1: return kKindSha1;
    case IndicatorType::kFileSha256: return kKindSha256;
    case IndicatorType::kFileMd5: return kKindMd5;
    case IndicatorType::kCertificateThumbprint: return kKindThumb;
    case IndicatorType::kIpAddress: return kKindIp;
    case IndicatorType::kDomainName:
    case IndicatorType::kUrl: return kKindDns;
  }
  return kKindDns;
}

size_t HashBytesOf(Kind k) {
  switch (k) {
    case kKindSha1: return 20;
    case kKindSha256: return 32;
    case kKindMd5: return 16;
    case kKindThumb: return 20;
    case kKindIp: return 17;  // 16 address bytes + prefix length
    case kKindDns: return 0;
  }
  return 0;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ParseHex(std::string_view hex, uint8_t* out, size_t bytes) {
  if (hex.size() != bytes * 2) return false;
  for (size_t i = 0; i < bytes; ++i) {
    int hi = HexDigit(hex[2 * i]), lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string ToHex(const uint8_t* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

// 16 bytes, v4 as ::ffff:a.b.c.d; false if `text` is not a literal address.
bool ParseAddress(std::string_view text, uint8_t out[16], bool* v6) {
  std::string s(text);
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    std::memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    std::memcpy(out + 12, &a4, 4);
    *v6 = false;
    return true;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    std::memcpy(out, &a6, 16);
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    *v6 = std::memcmp(out, kMapped, 12) != 0;
    return true;
  }
  return false;
}

void MaskPrefix(uint8_t addr[16], int prefix) {
  for (int i = 0; i < 16; ++i) {
    const int bits = std::clamp(prefix - i * 8, 0, 8);
    addr[i] &= static_cast<uint8_t>(bits == 0 ? 0 : 0xff << (8 - bits));
  }
}

bool IsV4Mapped(const uint8_t a[16]) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, kMapped, 12) == 0;
}

// "a.b.c.d/n" or "v6/n" from the 16-byte form and the 0..128 prefix (v4: 96 + n).
std::string FormatCidr(const uint8_t a[16], int prefix, bool bare_host) {
  char buf[INET6_ADDRSTRLEN];
  if (IsV4Mapped(a) && prefix >= 96) {
    inet_ntop(AF_INET, a + 12, buf, sizeof buf);
    if (bare_host && prefix == 128) return buf;
    return std::string(buf) + "/" + std::to_string(prefix - 96);
  }
  inet_ntop(AF_INET6, a, buf, sizeof buf);
  if (bare_host && prefix == 128) return buf;
  return std::string(buf) + "/" + std::to_string(prefix);
}

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t HashKey(Kind kind, const uint8_t* bytes, size_t len) {
  if (kind <= kKindThumb) {  // already uniformly random bytes
    uint64_t v;
    std::memcpy(&v, bytes, 8);
    return Mix(v ^ kind);
  }
  return Mix(std::hash<std::string_view>()(
                 std::string_view(reinterpret_cast<const char*>(bytes), len)) ^
             kind);
}

// ---- the open-addressing index --------------------------------------------------------

// A multiset of record numbers under linear probing. A slot is (8-bit hash tag << 24 | record
// number), so a probe touches a record only when its tag matches: a miss usually costs one
// cache line of slots and no record at all.
class SlotIndex {
 public:
  static constexpr uint32_t kEmpty = 0xffffffffu, kTomb = 0xfffffffeu;
  static constexpr uint32_t kMaxRecords = 0x00fffff0u;  // record numbers fit in 24 bits

  template <typename HashOf>
  void Insert(uint32_t rec, uint64_t hash, const HashOf& hash_of) {
    if ((used_ + 1) * 5 > slots_.size() * 4) Grow(hash_of);
    Place(rec, hash);
  }

  // Calls fn(rec) for candidates in probe order until it returns false.
  template <typename Fn>
  void Probe(uint64_t hash, const Fn& fn) const {
    if (slots_.empty()) return;
    const size_t mask = slots_.size() - 1;
    const uint32_t tag = Tag(hash);
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const uint32_t s = slots_[i];
      if (s == kEmpty) return;
      if (s != kTomb && (s & 0xff000000u) == tag && !fn(s & 0x00ffffffu)) return;
    }
  }

  bool Erase(uint64_t hash, uint32_t rec) {
    if (slots_.empty()) return false;
    const size_t mask = slots_.size() - 1;
    const uint32_t want = Tag(hash) | rec;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      if (slots_[i] == kEmpty) return false;
      if (slots_[i] == want) {
        slots_[i] = kTomb;
        --size_;
        return true;
      }
    }
  }

  void Clear() {
    slots_.clear();
    slots_.shrink_to_fit();
    used_ = size_ = 0;
  }
  size_t bytes() const { return slots_.capacity() * sizeof(uint32_t); }

 private:
  static uint32_t Tag(uint64_t hash) { return static_cast<uint32_t>(hash >> 56) << 24; }

  void Place(uint32_t rec, uint64_t hash) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      if (slots_[i] == kEmpty || slots_[i] == kTomb) {
        if (slots_[i] == kEmpty) ++used_;
        slots_[i] = Tag(hash) | rec;
        ++size_;
        return;
      }
    }
  }

  template <typename HashOf>
  void Grow(const HashOf& hash_of) {
    // Doubles only when live entries need it; otherwise rebuilding drops the tombstones.
    size_t cap = std::max<size_t>(slots_.size(), 16);
    while ((size_ + 1) * 2 > cap) cap *= 2;
    std::vector<uint32_t> old = std::move(slots_);
    slots_.assign(cap, kEmpty);
    used_ = size_ = 0;
    for (uint32_t s : old) {
      if (s == kEmpty || s == kTomb) continue;
      const uint32_t rec = s & 0x00ffffffu;
      Place(rec, hash_of(rec));
    }
  }

  std::vector<uint32_t> slots_;
  size_t used_ = 0;  // live + tombstones
  size_t size_ = 0;  // live
};

// ---- the text arena -------------------------------------------------------------------

// Append-only text in 1 MiB chunks (a string never spans two), addressed by a 32-bit offset
// (chunk << 20 | position). Chunks, unlike one growing buffer, waste at most one partial
// chunk and never copy on growth.
class TextArena {
 public:
  static constexpr uint32_t kChunkBits = 20, kChunk = 1u << kChunkBits;

  uint32_t Append(std::string_view a, std::string_view b, std::string_view c) {
    const size_t n = a.size() + b.size() + c.size();
    if (chunks_.empty() || pos_ + n > kChunk) {
      chunks_.push_back(std::make_unique<char[]>(kChunk));
      pos_ = 0;
    }
    char* p = chunks_.back().get() + pos_;
    std::memcpy(p, a.data(), a.size());
    std::memcpy(p + a.size(), b.data(), b.size());
    std::memcpy(p + a.size() + b.size(), c.data(), c.size());
    const uint32_t off = static_cast<uint32_t>((chunks_.size() - 1) << kChunkBits | pos_);
    pos_ += n;
    live_ += n;
    return off;
  }
  std::string_view View(uint32_t off, size_t n) const {
    return {chunks_[off >> kChunkBits].get() + (off & (kChunk - 1)), n};
  }
  void Release(size_t n) { live_ -= n; }
  size_t allocated() const { return chunks_.size() * size_t{kChunk}; }
  size_t live() const { return live_; }
  void Clear() {
    chunks_.clear();
    pos_ = live_ = 0;
  }

 private:
  std::vector<std::unique_ptr<char[]>> chunks_;
  size_t pos_ = 0, live_ = 0;
};

// One indicator: 48 bytes.
struct Record {
  // Hashes: the raw digest. IP: 16 address bytes (masked), key[16] = prefix length 0..128.
  // DNS kinds: key[0..1] offset and key[2..3] length of the host inside the value text.
  uint8_t key[32];
  uint32_t text;       // arena offset of id | title | value (value only for DNS kinds)
  uint32_t expires_s;  // 0 = never
  uint16_t value_len;
  uint8_t id_len, title_len;
  IndicatorType type;
  IndicatorAction action;
  uint8_t severity;  // index into kSeverities
  uint8_t flags;     // kLive | kAlert
};
static_assert(sizeof(Record) == 48, "Record layout is part of the memory budget");
// kThumb256: a CertificateThumbprint given as SHA-256 (key holds 32 bytes, not 20).
constexpr uint8_t kLive = 1, kAlert = 2, kThumb256 = 4;

}  // namespace

// ---- free functions -------------------------------------------------------------------

std::string_view IndicatorTypeName(IndicatorType type) {
  return kTypeNames[static_cast<size_t>(type)];
}

Result<IndicatorType> ParseIndicatorType(std::string_view name) {
  for (size_t i = 0; i < kTypeNames.size(); ++i) {
    if (kTypeNames[i] == name) return static_cast<IndicatorType>(i);
  }
  return InvalidArgument("unknown indicator type '" + std::string(name) + "'");
}

std::string_view IndicatorActionName(IndicatorAction action) {
  return kActionNames[static_cast<size_t>(action)];
}

Result<IndicatorAction> ParseIndicatorAction(std::string_view name) {
  for (size_t i = 0; i < kActionNames.size(); ++i) {
    if (kActionNames[i] == name) return static_cast<IndicatorAction>(i);
  }
  if (name == "Warn" || name == "Alert") return IndicatorAction::kAudit;
  if (name == "AlertAndBlock") return IndicatorAction::kBlock;
  return InvalidArgument("unknown indicator action '" + std::string(name) + "'");
}

quell::v1::Indicator IndicatorMatch::ToProto() const {
  quell::v1::Indicator p;
  p.set_id(id);
  p.set_type(std::string(IndicatorTypeName(type)));
  p.set_value(value);
  p.set_action(std::string(IndicatorActionName(action)));
  p.set_severity(severity);
  p.set_title(title);
  p.set_generate_alert(generate_alert);
  p.set_expiration_unix_ms(expires);
  return p;
}

Result<IpRange> ParseIpRange(std::string_view text) {
  std::string_view addr = text;
  int prefix = -1;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    std::string_view len = text.substr(slash + 1);
    if (len.empty() || len.size() > 3 ||
        !std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return InvalidArgument("bad prefix length in '" + std::string(text) + "'");
    }
    prefix = std::stoi(std::string(len));
  }
  uint8_t a[16];
  bool v6 = false;
  if (!ParseAddress(addr, a, &v6)) {
    return InvalidArgument("'" + std::string(text) + "' is not an IP address or CIDR range");
  }
  const int max = v6 ? 128 : 32;
  if (prefix < 0) prefix = max;
  if (prefix > max) return InvalidArgument("prefix too long in '" + std::string(text) + "'");
  const int full = v6 ? prefix : prefix + 96;
  MaskPrefix(a, full);  // lenient: host bits are cleared, as nft would
  return IpRange{.v6 = v6, .cidr = FormatCidr(a, full, false)};
}

Result<std::string> NormaliseDomain(std::string_view name) {
  std::string s(name);
  if (s.starts_with("*.")) s.erase(0, 2);
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s.empty() || s.size() > 253) return InvalidArgument("bad domain name '" + std::string(name) + "'");
  char prev = '.';
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                    c == '.' || c == ':';  // ':' for IPv6 literals in URLs
    if (!ok || (c == '.' && prev == '.')) {
      return InvalidArgument("bad domain name '" + std::string(name) + "'");
    }
    prev = c;
  }
  if (s.front() == '.') return InvalidArgument("bad domain name '" + std::string(name) + "'");
  return s;
}

Result<std::string> UrlHost(std::string_view url) {
  std::string_view rest = url;
  if (size_t scheme = rest.find("://"); scheme != std::string_view::npos) rest.remove_prefix(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return InvalidArgument("bad URL '" + std::string(url) + "'");
    rest = rest.substr(1, close - 1);
  } else if (size_t colon = rest.find(':'); colon != std::string_view::npos) {
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return InvalidArgument("URL '" + std::string(url) + "' has no host");
  return NormaliseDomain(rest);
}

// ---- the set --------------------------------------------------------------------------

struct IndicatorSet::Impl {
  explicit Impl(const Clock& c) : clock(&c) {}

  const Clock* clock;
  std::vector<Record> records;
  std::vector<uint32_t> free_list;
  TextArena arena;
  SlotIndex by_id, by_key;
  std::array<uint32_t, 129> prefix_count{};  // IP records per prefix length
  size_t live = 0;
  size_t certificates = 0;  // CertificateThumbprint records, expired ones included

  std::string_view Id(const Record& r) const { return arena.View(r.text, r.id_len); }
  std::string_view Title(const Record& r) const {
    return arena.View(r.text + r.id_len, r.title_len);
  }
  std::string_view ValueText(const Record& r) const {
    return arena.View(r.text + r.id_len + r.title_len, r.value_len);
  }
  std::string_view Host(const Record& r) const {
    uint16_t off, len;
    std::memcpy(&off, r.key, 2);
    std::memcpy(&len, r.key + 2, 2);
    return arena.View(r.text + r.id_len + r.title_len + off, len);
  }
  // Arena bytes of a record: id, title, value and (Url only) an appended lowercase host.
  size_t TextLen(const Record& r) const {
    size_t n = r.value_len;
    if (KindOf(r.type) == kKindDns) {
      uint16_t off, len;
      std::memcpy(&off, r.key, 2);
      std::memcpy(&len, r.key + 2, 2);
      n = std::max<size_t>(n, size_t{off} + len);
    }
    return r.id_len + r.title_len + n;
  }

  uint64_t IdHash(std::string_view id) const { return Mix(std::hash<std::string_view>()(id)); }
  uint64_t KeyHashOf(const Record& r) const {
    const Kind k = KindOf(r.type);
    if (k == kKindDns) {
      std::string_view h = Host(r);
      return HashKey(k, reinterpret_cast<const uint8_t*>(h.data()), h.size());
    }
    return HashKey(k, r.key, HashBytesOf(k));
  }

  bool Expired(const Record& r, UnixMillis now) const {
    return r.expires_s != 0 && static_cast<int64_t>(r.expires_s) * 1000 <= now;
  }

  IndicatorMatch ToMatch(const Record& r) const {
    IndicatorMatch m;
    m.id = std::string(Id(r));
    m.type = r.type;
    m.action = r.action;
    m.severity = std::string(kSeverities[r.severity]);
    m.title = std::string(Title(r));
    m.generate_alert = (r.flags & kAlert) != 0;
    m.expires = static_cast<int64_t>(r.expires_s) * 1000;
    const Kind k = KindOf(r.type);
    if (k == kKindDns) m.value = std::string(ValueText(r));
    else if (k == kKindIp) m.value = FormatCidr(r.key, r.key[16], true);
    else m.value = ToHex(r.key, (r.flags & kThumb256) ? 32 : HashBytesOf(k));
    return m;
  }

  std::optional<uint32_t> FindId(std::string_view id) const {
    std::optional<uint32_t> found;
    by_id.Probe(IdHash(id), [&](uint32_t rec) {
      if (Id(records[rec]) == id) {
        found = rec;
        return false;
      }
      return true;
    });
    return found;
  }

  // The strongest live record with exactly this key, if any.
  std::optional<uint32_t> FindKey(Kind kind, const uint8_t* bytes, size_t len,
                                  UnixMillis now) const {
    std::optional<uint32_t> best;
    by_key.Probe(HashKey(kind, bytes, len), [&](uint32_t rec) {
      const Record& r = records[rec];
      if (KindOf(r.type) != kind || Expired(r, now)) return true;
      bool same;
      if (kind == kKindDns) {
        std::string_view h = Host(r);
        same = h.size() == len && std::memcmp(h.data(), bytes, len) == 0;
      } else {
        same = std::memcmp(r.key, bytes, len) == 0;
      }
      if (same && (!best || Rank(r.action) < Rank(records[*best].action))) best = rec;
      return true;
    });
    return best;
  }

  void Erase(uint32_t rec) {
    Record& r = records[rec];
    by_id.Erase(IdHash(Id(r)), rec);
    by_key.Erase(KeyHashOf(r), rec);
    if (r.type == IndicatorType::kIpAddress) --prefix_count[r.key[16]];
    if (r.type == IndicatorType::kCertificateThumbprint) --certificates;
    arena.Release(TextLen(r));
    r.flags = 0;
    free_list.push_back(rec);
    --live;
  }

  // Rewrites the arena when more than half of it is garbage.
  void MaybeCompact() {
    if (arena.allocated() < 4 * size_t{TextArena::kChunk} || arena.live() * 2 > arena.allocated()) {
      return;
    }
    TextArena fresh;
    for (Record& r : records) {
      if (!(r.flags & kLive)) continue;
      r.text = fresh.Append(arena.View(r.text, TextLen(r)), {}, {});
    }
    arena = std::move(fresh);
  }
};

IndicatorSet::IndicatorSet(const Clock& clock) : impl_(std::make_unique<Impl>(clock)) {}
IndicatorSet::~IndicatorSet() = default;
IndicatorSet::IndicatorSet(IndicatorSet&&) noexcept = default;
IndicatorSet& IndicatorSet::operator=(IndicatorSet&&) noexcept = default;

Status IndicatorSet::Upsert(const quell::v1::Indicator& in) {
  Impl& s = *impl_;
  if (in.id().empty() || in.id().size() > 255) return InvalidArgument("indicator id must be 1..255 bytes");
  QUELL_ASSIGN_OR_RETURN(IndicatorType type, ParseIndicatorType(in.type()));
  QUELL_ASSIGN_OR_RETURN(IndicatorAction action, ParseIndicatorAction(in.action()));
  Record r{};
  r.type = type;
  r.action = action;
  r.flags = kLive | (in.generate_alert() ? kAlert : 0);
  for (size_t i = 1; i < kSeverities.size(); ++i) {
    if (kSeverities[i] == in.severity()) r.severity = static_cast<uint8_t>(i);
  }
  if (in.expiration_unix_ms() > 0) {
    // Rounded up to whole seconds; never 0 (= never).
    const int64_t secs = (in.expiration_unix_ms() + 999) / 1000;
    r.expires_s = static_cast<uint32_t>(std::clamp<int64_t>(secs, 1, std::numeric_limits<uint32_t>::max()));
  }
  std::string value_text;  // kept only for DNS kinds
  const Kind kind = KindOf(type);
  const std::string& v = in.value();
  switch (kind) {
    case kKindSha1:
    case kKindSha256:
    case kKindMd5:
    case kKindThumb:
      if (kind == kKindThumb && v.size() == 64 && ParseHex(v, r.key, 32)) {
        r.flags |= kThumb256;
        break;
      }
      if (!ParseHex(v, r.key, HashBytesOf(kind))) {
        return InvalidArgument(std::string(IndicatorTypeName(type)) + " value '" + v +
                               "' is not " + std::to_string(HashBytesOf(kind) * 2) + " hex digits");
      }
      break;
    case kKindIp: {
      QUELL_ASSIGN_OR_RETURN(IpRange range, ParseIpRange(v));
      const size_t slash = range.cidr.find('/');
      bool v6 = false;
      ParseAddress(std::string_view(range.cidr).substr(0, slash), r.key, &v6);
      const int len = std::stoi(range.cidr.substr(slash + 1));
      r.key[16] = static_cast<uint8_t>(v6 ? len : len + 96);
      break;
    }
    case kKindDns: {
      std::string host;
      if (type == IndicatorType::kUrl) {
        QUELL_ASSIGN_OR_RETURN(host, UrlHost(v));
        if (v.size() > 32768) return InvalidArgument("URL longer than 32768 bytes");
        value_text = v;
        // The host is read in place when the URL spells it in lowercase, else appended.
        size_t pos = value_text.find(host);
        if (pos == std::string::npos) {
          pos = value_text.size();
          value_text += host;
        }
        const uint16_t off = static_cast<uint16_t>(pos), len = static_cast<uint16_t>(host.size());
        std::memcpy(r.key, &off, 2);
        std::memcpy(r.key + 2, &len, 2);
        r.value_len = static_cast<uint16_t>(v.size());
      } else {
        QUELL_ASSIGN_OR_RETURN(host, NormaliseDomain(v));
        value_text = host;
        const uint16_t off = 0, len = static_cast<uint16_t>(host.size());
        std::memcpy(r.key, &off, 2);
        std::memcpy(r.key + 2, &len, 2);
        r.value_len = len;
      }
      break;
    }
  }
  if (auto existing = s.FindId(in.id())) s.Erase(*existing);
  if (s.free_list.empty() && s.records.size() >= SlotIndex::kMaxRecords) {
    return ResourceExhausted("more than 16 million indicators");
  }

  const std::string_view title = std::string_view(in.title()).substr(0, 255);
  r.id_len = static_cast<uint8_t>(in.id().size());
  r.title_len = static_cast<uint8_t>(title.size());
  r.text = s.arena.Append(in.id(), title, value_text);
  uint32_t rec;
  if (!s.free_list.empty()) {
    rec = s.free_list.back();
    s.free_list.pop_back();
    s.records[rec] = r;
  } else {
    rec = static_cast<uint32_t>(s.records.size());
    s.records.push_back(r);
  }
  auto id_hash_of = [&s](uint32_t x) { return s.IdHash(s.Id(s.records[x])); };
  auto key_hash_of = [&s](uint32_t x) { return s.KeyHashOf(s.records[x]); };
  s.by_id.Insert(rec, id_hash_of(rec), id_hash_of);
  s.by_key.Insert(rec, key_hash_of(rec), key_hash_of);
  if (type == IndicatorType::kIpAddress) ++s.prefix_count[r.key[16]];
  ++s.live;
  if (type == IndicatorType::kCertificateThumbprint) ++s.certificates;
  s.MaybeCompact();
  return Status::Ok();
}

bool IndicatorSet::Remove(std::string_view id) {
  auto rec = impl_->FindId(id);
  if (!rec) return false;
  impl_->Erase(*rec);
  impl_->MaybeCompact();
  return true;
}

void IndicatorSet::Clear() {
  const Clock& clock = *impl_->clock;
  impl_ = std::make_unique<Impl>(clock);
}

size_t IndicatorSet::Purge() {
  Impl& s = *impl_;
  const UnixMillis now = s.clock->Now();
  size_t n = 0;
  for (uint32_t i = 0; i < s.records.size(); ++i) {
    if ((s.records[i].flags & kLive) && s.Expired(s.records[i], now)) {
      s.Erase(i);
      ++n;
    }
  }
  if (n > 0) s.MaybeCompact();
  return n;
}

size_t IndicatorSet::size() const { return impl_->live; }

size_t IndicatorSet::MemoryBytes() const {
  const Impl& s = *impl_;
  return s.records.capacity() * sizeof(Record) + s.free_list.capacity() * sizeof(uint32_t) +
         s.arena.allocated() + s.by_id.bytes() + s.by_key.bytes() + sizeof(Impl);
}

std::optional<IndicatorMatch> IndicatorSet::FindById(std::string_view id) const {
  auto rec = impl_->FindId(id);
  if (!rec) return std::nullopt;
  return impl_->ToMatch(impl_->records[*rec]);
}

std::optional<IndicatorMatch> IndicatorSet::MatchFile(std::string_view sha256,
                                                      std::string_view sha1,
                                                      std::string_view md5) const {
  const Impl& s = *impl_;
  const UnixMillis now = s.clock->Now();
  const std::pair<Kind, std::string_view> tries[] = {
      {kKindSha256, sha256}, {kKindSha1, sha1}, {kKindMd5, md5}};
  for (const auto& [kind, hex] : tries) {
    uint8_t key[32];
    if (hex.empty() || !ParseHex(hex, key, HashBytesOf(kind))) continue;
    if (auto rec = s.FindKey(kind, key, HashBytesOf(kind), now)) return s.ToMatch(s.records[*rec]);
  }
  return std::nullopt;
}

std::optional<IndicatorMatch> IndicatorSet::MatchCertificate(std::string_view thumbprint,
                                                             bool include_allowed) const {
  const Impl& s = *impl_;
  uint8_t key[32];
  const size_t len = thumbprint.size() / 2;  // 20 (SHA-1) or 32 (SHA-256)
  if (s.certificates == 0 || (len != 20 && len != 32) || !ParseHex(thumbprint, key, len)) {
    return std::nullopt;
  }
  const UnixMillis now = s.clock->Now();
  std::optional<uint32_t> best;
  // The index hashes a thumbprint's first 8 bytes (HashKey), whatever its length.
  s.by_key.Probe(HashKey(kKindThumb, key, len), [&](uint32_t rec) {
    const Record& r = s.records[rec];
    if (r.type != IndicatorType::kCertificateThumbprint || s.Expired(r, now) ||
        ((r.flags & kThumb256) ? 32u : 20u) != len || std::memcmp(r.key, key, len) != 0 ||
        (!include_allowed && r.action == IndicatorAction::kAllowed)) {
      return true;
    }
    if (!best || Rank(r.action) < Rank(s.records[*best].action)) best = rec;
    return true;
  });
  if (best) return s.ToMatch(s.records[*best]);
  return std::nullopt;
}

bool IndicatorSet::HasCertificates() const { return impl_->certificates > 0; }

std::optional<IndicatorMatch> IndicatorSet::MatchIp(std::string_view address) const {
  const Impl& s = *impl_;
  uint8_t addr[17];
  bool v6 = false;
  if (!ParseAddress(address, addr, &v6)) return std::nullopt;
  const UnixMillis now = s.clock->Now();
  for (int len = 128; len >= 0; --len) {
    if (s.prefix_count[len] == 0) continue;
    uint8_t key[17];
    std::memcpy(key, addr, 16);
    MaskPrefix(key, len);
    key[16] = static_cast<uint8_t>(len);
    if (auto rec = s.FindKey(kKindIp, key, 17, now)) return s.ToMatch(s.records[*rec]);
  }
  return std::nullopt;
}

std::optional<IndicatorMatch> IndicatorSet::MatchDomain(std::string_view name) const {
  const Impl& s = *impl_;
  auto normal = NormaliseDomain(name);
  if (!normal.ok()) return std::nullopt;
  const UnixMillis now = s.clock->Now();
  std::string_view rest = *normal;
  for (;;) {
    if (auto rec = s.FindKey(kKindDns, reinterpret_cast<const uint8_t*>(rest.data()), rest.size(), now)) {
      return s.ToMatch(s.records[*rec]);
    }
    size_t dot = rest.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(dot + 1);
  }
}

std::optional<IndicatorMatch> IndicatorSet::FindIpRange(std::string_view cidr) const {
  const Impl& s = *impl_;
  auto range = ParseIpRange(cidr);
  if (!range.ok()) return std::nullopt;
  const size_t slash = range->cidr.find('/');
  uint8_t key[17];
  bool v6 = false;
  ParseAddress(std::string_view(range->cidr).substr(0, slash), key, &v6);
  const int len = std::stoi(range->cidr.substr(slash + 1));
  key[16] = static_cast<uint8_t>(v6 ? len : len + 96);
  if (auto rec = s.FindKey(kKindIp, key, 17, s.clock->Now())) return s.ToMatch(s.records[*rec]);
  return std::nullopt;
}

void IndicatorSet::ForEach(const std::function<void(const IndicatorMatch&)>& fn) const {
  const Impl& s = *impl_;
  const UnixMillis now = s.clock->Now();
  for (const Record& r : s.records) {
    if ((r.flags & kLive) && !s.Expired(r, now)) fn(s.ToMatch(r));
  }
}

size_t IndicatorSet::CountFileBlocks() const {
  const Impl& s = *impl_;
  const UnixMillis now = s.clock->Now();
  size_t n = 0;
  for (const Record& r : s.records) {
    if (!(r.flags & kLive) || s.Expired(r, now) || KindOf(r.type) > kKindThumb) continue;
    if (r.action == IndicatorAction::kBlock || r.action == IndicatorAction::kBlockAndRemediate) ++n;
  }
  return n;
}

size_t IndicatorSet::CountDomainEnforced() const {
  const Impl& s = *impl_;
  const UnixMillis now = s.clock->Now();
  size_t n = 0;
  for (const Record& r : s.records) {
    if (!(r.flags & kLive) || s.Expired(r, now) || KindOf(r.type) != kKindDns) continue;
    if (r.action != IndicatorAction::kAllowed) ++n;
  }
  return n;
}

size_t IndicatorSet::CountFileRemediations() const {
  const Impl& s = *impl_;
  const UnixMillis now = s.clock->Now();
  size_t n = 0;
  for (const Record& r : s.records) {
    if (!(r.flags & kLive) || s.Expired(r, now) || KindOf(r.type) > kKindMd5) continue;
    if (r.action == IndicatorAction::kBlockAndRemediate) ++n;
  }
  return n;
}

std::vector<IpRange> IndicatorSet::BlockedIpRanges() const {
  const Impl& s = *impl_;
  const UnixMillis now = s.clock->Now();
  std::vector<IpRange> out;
  for (const Record& r : s.records) {
    if (!(r.flags & kLive) || s.Expired(r, now) || r.type != IndicatorType::kIpAddress) continue;
    if (r.action != IndicatorAction::kBlock && r.action != IndicatorAction::kBlockAndRemediate) continue;
    // An Allowed indicator for the same range wins over the block.
    uint8_t key[17];
    std::memcpy(key, r.key, 17);
    if (auto best = s.FindKey(kKindIp, key, 17, now);
        best && s.records[*best].action == IndicatorAction::kAllowed) {
      continue;
    }
    out.push_back({.v6 = !IsV4Mapped(r.key) || r.key[16] < 96, .cidr = FormatCidr(r.key, r.key[16], false)});
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

UnixMillis IndicatorSet::NextExpiry() const {
  const Impl& s = *impl_;
  const UnixMillis now = s.clock->Now();
  UnixMillis next = 0;
  for (const Record& r : s.records) {
    if (!(r.flags & kLive) || r.expires_s == 0 || s.Expired(r, now)) continue;
    const UnixMillis t = static_cast<int64_t>(r.expires_s) * 1000;
    if (next == 0 || t < next) next = t;
  }
  return next;
}

}  // namespace quell::agent
