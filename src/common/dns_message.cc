#include "common/dns_message.h"

namespace quell {
namespace {

uint16_t Read16(std::span<const uint8_t> m, size_t at) {
  return static_cast<uint16_t>((m[at] << 8) | m[at + 1]);
}

void Put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xff));
}

uint16_t AnswerFlags(const DnsHeader& query, DnsRcode rcode) {
  // QR=1, opcode kept, AA=0, TC=0, RD kept, RA=1, Z=0.
  return static_cast<uint16_t>(0x8000 | (query.flags & 0x7800) | (query.flags & 0x0100) | 0x0080 |
                               static_cast<uint16_t>(rcode));
}

}  // namespace

std::string DnsName::Text() const {
  std::string s;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) s += '.';
    s += labels[i];
  }
  return s;
}

std::vector<uint8_t> DnsName::Wire() const {
  std::vector<uint8_t> out;
  for (const std::string& l : labels) {
    out.push_back(static_cast<uint8_t>(l.size()));
    out.insert(out.end(), l.begin(), l.end());
  }
  out.push_back(0);
  return out;
}

Result<DnsHeader> ParseDnsHeader(std::span<const uint8_t> m) {
  if (m.size() < kDnsHeaderSize) return InvalidArgument("DNS message shorter than its header");
  return DnsHeader{.id = Read16(m, 0),
                   .flags = Read16(m, 2),
                   .qdcount = Read16(m, 4),
                   .ancount = Read16(m, 6),
                   .nscount = Read16(m, 8),
                   .arcount = Read16(m, 10)};
}

Result<DnsName> ParseDnsName(std::span<const uint8_t> m, size_t* offset) {
  DnsName name;
  size_t pos = *offset;
  size_t end = 0;            // where the name ends in place (set at the first pointer)
  bool jumped = false;
  size_t limit = 0;          // a pointer must point strictly before this
  int pointers = 0;
  size_t wire = 1;           // the terminating zero byte
  for (;;) {
    if (pos >= m.size()) return InvalidArgument("DNS name truncated");
    const uint8_t len = m[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= m.size()) return InvalidArgument("DNS name pointer truncated");
      const size_t target = static_cast<size_t>(((len & 0x3f) << 8) | m[pos + 1]);
      if (!jumped) {
        end = pos + 2;
        limit = pos;
        jumped = true;
      }
      // Strictly backwards from the start of the current segment: targets decrease, so a
      // chain of pointers always ends (no loops), and the count bounds the work anyway.
      if (target >= limit) return InvalidArgument("DNS name pointer does not point backwards");
      if (++pointers > kDnsMaxPointers) return InvalidArgument("too many DNS name pointers");
      limit = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0) return InvalidArgument("DNS label type reserved (0x40/0x80)");
    if (len == 0) {
      *offset = jumped ? end : pos + 1;
      return name;
    }
    if (len > kDnsMaxLabel) return InvalidArgument("DNS label longer than 63 bytes");
    if (pos + 1 + len > m.size()) return InvalidArgument("DNS label truncated");
    wire += 1 + len;
    if (wire > kDnsMaxNameWire) return InvalidArgument("DNS name longer than 255 bytes");
    name.labels.emplace_back(reinterpret_cast<const char*>(m.data() + pos + 1), len);
    pos += 1 + len;
  }
}

Result<DnsQuery> ParseDnsQuery(std::span<const uint8_t> m) {
  QUELL_ASSIGN_OR_RETURN(DnsHeader header, ParseDnsHeader(m));
  if (header.qr()) return InvalidArgument("DNS message is a response, not a query");
  if (header.qdcount == 0) return InvalidArgument("DNS query without a question");
  size_t offset = kDnsHeaderSize;
  QUELL_ASSIGN_OR_RETURN(DnsName name, ParseDnsName(m, &offset));
  if (offset + 4 > m.size()) return InvalidArgument("DNS question truncated");
  return DnsQuery{.header = header,
                  .name = std::move(name),
                  .qtype = Read16(m, offset),
                  .qclass = Read16(m, offset + 2)};
}

std::vector<uint8_t> BuildDnsAnswer(const DnsQuery& query, DnsRcode rcode) {
  std::vector<uint8_t> out;
  out.reserve(kDnsHeaderSize + kDnsMaxNameWire + 4);
  Put16(out, query.header.id);
  Put16(out, AnswerFlags(query.header, rcode));
  Put16(out, 1);  // qdcount
  Put16(out, 0);
  Put16(out, 0);
  Put16(out, 0);
  const std::vector<uint8_t> name = query.name.Wire();
  out.insert(out.end(), name.begin(), name.end());
  Put16(out, query.qtype);
  Put16(out, query.qclass);
  return out;
}

std::vector<uint8_t> BuildDnsAddressAnswer(const DnsQuery& query, std::array<uint8_t, 4> address,
                                           uint32_t ttl) {
  std::vector<uint8_t> out = BuildDnsAnswer(query, DnsRcode::kNoError);
  out[7] = 1;  // ancount (bytes 6..7), BuildDnsAnswer left it 0
  // The question's name starts right after the header: pointer 0xc000 | 12.
  Put16(out, 0xc000 | kDnsHeaderSize);
  Put16(out, 1);  // type A
  Put16(out, 1);  // class IN
  Put16(out, static_cast<uint16_t>(ttl >> 16));
  Put16(out, static_cast<uint16_t>(ttl & 0xffff));
  Put16(out, 4);  // rdlength
  out.insert(out.end(), address.begin(), address.end());
  return out;
}

std::vector<uint8_t> BuildDnsHeaderOnlyAnswer(const DnsHeader& header, DnsRcode rcode) {
  std::vector<uint8_t> out;
  out.reserve(kDnsHeaderSize);
  Put16(out, header.id);
  Put16(out, AnswerFlags(header, rcode));
  for (int i = 0; i < 4; ++i) Put16(out, 0);
  return out;
}

}  // namespace quell
