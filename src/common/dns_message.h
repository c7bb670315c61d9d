// The DNS wire format (RFC 1035 §4.1) as far as Quell needs it (the agent's DNS filter, the
// sandbox's fake resolver): the header and the first question of a query, and answers to it.
// Pure functions over bytes; the input is untrusted (any local process may send it), so every
// read is bounds-checked and names are limited as RFC 1035 §2.3.4 says.
//
// Header (12 bytes, big-endian):
//   0  id         u16
//   2  flags      u16  QR(15) OPCODE(14..11) AA(10) TC(9) RD(8) RA(7) Z(6..4) RCODE(3..0)
//   4  qdcount    u16
//   6  ancount    u16
//   8  nscount    u16
//   10 arcount    u16
// Question: QNAME (labels: length byte 1..63 then bytes, ending with a 0 byte; a byte with
// the top two bits set starts a 2-byte compression pointer to an earlier offset), QTYPE u16,
// QCLASS u16.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace quell {

inline constexpr size_t kDnsHeaderSize = 12;
inline constexpr size_t kDnsMaxNameWire = 255;  // RFC 1035 §2.3.4, length bytes included
inline constexpr size_t kDnsMaxLabel = 63;
// How many compression pointers one name may follow. A name of 255 bytes has at most 127
// labels, so more pointers than that can only be a loop or an attack.
inline constexpr int kDnsMaxPointers = 127;

enum class DnsRcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};

struct DnsHeader {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;

  bool qr() const { return (flags & 0x8000) != 0; }
  uint8_t opcode() const { return static_cast<uint8_t>((flags >> 11) & 0xf); }
  bool tc() const { return (flags & 0x0200) != 0; }
  bool rd() const { return (flags & 0x0100) != 0; }
  uint8_t rcode() const { return static_cast<uint8_t>(flags & 0xf); }
};

// A domain name as it was on the wire: labels in order, bytes and case kept (a resolver may
// randomise case, RFC 7766 / "0x20", and expects it echoed).
struct DnsName {
  std::vector<std::string> labels;  // empty: the root
  // "www.example.com" (the root is ""); a label's own '.' or odd bytes are not escaped, so
  // this is for matching and logs, not for re-encoding.
  std::string Text() const;
  // Uncompressed wire form, at most kDnsMaxNameWire bytes.
  std::vector<uint8_t> Wire() const;
};

struct DnsQuery {
  DnsHeader header;
  DnsName name;  // of the first question
  uint16_t qtype = 0;
  uint16_t qclass = 0;
};

Result<DnsHeader> ParseDnsHeader(std::span<const uint8_t> message);

// Reads the name starting at `*offset` of `message`; on success `*offset` is just past the
// name where it starts (not where a pointer led). InvalidArgument when truncated, when a
// label is longer than 63 bytes or uses the reserved 0x40/0x80 prefixes, when the name is
// longer than 255 bytes, or when a pointer does not point strictly backwards (which also
// rules out loops) or more than kDnsMaxPointers pointers are followed.
Result<DnsName> ParseDnsName(std::span<const uint8_t> message, size_t* offset);

// A query the filter may answer: QR = 0 and at least one question, whose name, type and
// class are read. Other sections are not read (they are forwarded as they are).
// InvalidArgument otherwise.
Result<DnsQuery> ParseDnsQuery(std::span<const uint8_t> message);

// The answer to `query` with `rcode` and no records: same id and opcode, QR = 1, AA = 0,
// TC = 0, RD copied, RA = 1 (this resolver recurses), the question echoed.
std::vector<uint8_t> BuildDnsAnswer(const DnsQuery& query, DnsRcode rcode);

// The answer to `query` with one IN A record for the question's name: NOERROR, flags as in
// BuildDnsAnswer, the question echoed, then the record (its name a compression pointer to
// the question, TTL `ttl` seconds, RDATA `address` in network order). Additional records of
// the query (EDNS) are not echoed. REQUIRES: the query asks for type A (1), class IN (1);
// the record is an A record whatever it asked.
std::vector<uint8_t> BuildDnsAddressAnswer(const DnsQuery& query, std::array<uint8_t, 4> address,
                                           uint32_t ttl);

// An answer with only a header (no question), for queries whose question cannot be read:
// same id, opcode and RD as `header`, QR = 1, RA = 1, all counts 0.
std::vector<uint8_t> BuildDnsHeaderOnlyAnswer(const DnsHeader& header, DnsRcode rcode);

}  // namespace quell
