#include "common/dns_message.h"
#include "common/testing/dns_query.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace quell {
namespace {

using Bytes = std::vector<uint8_t>;

// A query: id 0xbeef, RD, one question for `name` (dotted, no escapes), type A, class IN.
Bytes Query(const std::string& name, uint16_t flags = 0x0100, uint16_t qdcount = 1) {
  return testing::DnsQueryBytes(name, {.id = 0xbeef, .flags = flags, .qdcount = qdcount});
}

TEST(DnsMessageTest, ParsesHeaderAndQuestionKeepingCase) {
  Bytes q = Query("WwW.Example.COM");
  auto parsed = ParseDnsQuery(q);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->header.id, 0xbeef);
  EXPECT_TRUE(parsed->header.rd());
  EXPECT_EQ(parsed->name.Text(), "WwW.Example.COM");
  EXPECT_EQ(parsed->qtype, 1);
  EXPECT_EQ(parsed->qclass, 1);
}

TEST(DnsMessageTest, NxDomainAnswerEchoesTheQuestion) {
  Bytes q = Query("Evil.example", 0x0100);
  auto parsed = ParseDnsQuery(q);
  ASSERT_TRUE(parsed.ok());
  Bytes a = BuildDnsAnswer(*parsed, DnsRcode::kNxDomain);
  ASSERT_EQ(a.size(), q.size());
  auto header = ParseDnsHeader(a);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->id, 0xbeef);
  EXPECT_TRUE(header->qr());
  EXPECT_TRUE(header->rd());
  EXPECT_EQ(header->flags & 0x0080, 0x0080) << "RA set";
  EXPECT_EQ(header->flags & 0x0600, 0) << "AA and TC clear";
  EXPECT_EQ(header->rcode(), 3);
  EXPECT_EQ(header->qdcount, 1);
  EXPECT_EQ(header->ancount + header->nscount + header->arcount, 0);
  // The question, byte for byte (case included: 0x20 randomisation).
  EXPECT_EQ(Bytes(a.begin() + 12, a.end()), Bytes(q.begin() + 12, q.end()));

  // RD clear in the query stays clear.
  Bytes q2 = Query("x.example", 0x0000);
  Bytes a2 = BuildDnsAnswer(*ParseDnsQuery(q2), DnsRcode::kNxDomain);
  EXPECT_EQ(a2[2] & 0x01, 0);
}

TEST(DnsMessageTest, HeaderOnlyAnswer) {
  Bytes q = Query("a.b");
  Bytes a = BuildDnsHeaderOnlyAnswer(*ParseDnsHeader(q), DnsRcode::kFormErr);
  ASSERT_EQ(a.size(), 12u);
  EXPECT_EQ(a[0], 0xbe);
  EXPECT_EQ(a[3] & 0x0f, 1);
  EXPECT_EQ(a[5], 0);
}

TEST(DnsMessageTest, RejectsTruncatedMessages) {
  Bytes q = Query("www.example.com");
  for (size_t n = 0; n < q.size(); ++n) {
    EXPECT_FALSE(ParseDnsQuery(std::span(q.data(), n)).ok()) << "length " << n;
  }
  EXPECT_TRUE(ParseDnsQuery(q).ok());
}

TEST(DnsMessageTest, RejectsResponsesAndQueriesWithoutQuestion) {
  EXPECT_FALSE(ParseDnsQuery(Query("a.example", 0x8100)).ok());
  EXPECT_FALSE(ParseDnsQuery(Query("a.example", 0x0100, 0)).ok());
}

TEST(DnsMessageTest, RejectsOversizedLabelsAndNames) {
  // A length byte of 64 has the top bits 01: a reserved label type.
  Bytes q = Query(std::string(63, 'a') + ".com");
  EXPECT_TRUE(ParseDnsQuery(q).ok());
  q[12] = 64;
  EXPECT_FALSE(ParseDnsQuery(q).ok());
  q[12] = 0x80;  // reserved too
  EXPECT_FALSE(ParseDnsQuery(q).ok());

  // 4 labels of 63 = 4 * 64 + 1 = 257 bytes on the wire: over 255.
  std::string l(63, 'x');
  EXPECT_FALSE(ParseDnsQuery(Query(l + "." + l + "." + l + "." + l)).ok());
  // 3 * 64 + 62 + 1 = 255: the maximum.
  EXPECT_TRUE(ParseDnsQuery(Query(l + "." + l + "." + l + "." + std::string(61, 'y'))).ok());
  EXPECT_FALSE(ParseDnsQuery(Query(l + "." + l + "." + l + "." + std::string(62, 'y'))).ok());
}

TEST(DnsMessageTest, FollowsBackwardPointersAndRejectsLoops) {
  // Message: header, then at 12 "example.com", then at 25 "www" + pointer to 12.
  Bytes m = Query("example.com");
  m.resize(m.size() - 4);  // drop type/class: we read names directly
  const size_t www = m.size();
  m.insert(m.end(), {3, 'w', 'w', 'w', 0xc0, 12});
  size_t offset = www;
  auto name = ParseDnsName(m, &offset);
  ASSERT_TRUE(name.ok()) << name.status().ToString();
  EXPECT_EQ(name->Text(), "www.example.com");
  EXPECT_EQ(offset, m.size()) << "continues after the pointer, not after its target";

  // A pointer to itself.
  Bytes self = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
  EXPECT_FALSE(ParseDnsQuery(self).ok());
  // Forward pointer.
  Bytes fwd = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 1, 'a', 0, 0, 1, 0, 1};
  EXPECT_FALSE(ParseDnsQuery(fwd).ok());
  // A two-step loop: 14 -> 12 ("a" then pointer to 14 again).
  Bytes loop = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0xc0, 12};
  offset = 14;
  EXPECT_FALSE(ParseDnsName(loop, &offset).ok());
  // A pointer with only one byte present.
  Bytes half = {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0};
  EXPECT_FALSE(ParseDnsQuery(half).ok());
}

TEST(DnsMessageTest, PointerChainsAreBounded) {
  // 200 pointers each to the previous one, strictly backwards: the chain is legal in shape
  // but longer than any real name needs.
  Bytes m(12, 0);
  m.insert(m.end(), {1, 'a', 0});  // at 12
  size_t prev = 12;
  for (int i = 0; i < 200; ++i) {
    const size_t at = m.size();
    m.push_back(static_cast<uint8_t>(0xc0 | (prev >> 8)));
    m.push_back(static_cast<uint8_t>(prev & 0xff));
    prev = at;
  }
  size_t offset = prev;
  EXPECT_FALSE(ParseDnsName(m, &offset).ok());
  offset = 12 + 3 + 2 * 5;  // a chain of 6 pointers is fine
  auto ok = ParseDnsName(m, &offset);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->Text(), "a");
}

TEST(DnsMessageTest, NameThroughPointersStillLimitedTo255) {
  // A 190-byte name at 12, and a name adding 64 more through a pointer to it: 255 + 64.
  Bytes m(12, 0);
  std::string l(63, 'q');
  for (int i = 0; i < 3; ++i) {
    m.push_back(63);
    m.insert(m.end(), l.begin(), l.end());
  }
  m.push_back(0);
  const size_t second = m.size();
  m.push_back(63);
  m.insert(m.end(), l.begin(), l.end());
  m.insert(m.end(), {0xc0, 12});
  size_t offset = second;
  EXPECT_FALSE(ParseDnsName(m, &offset).ok());
}

TEST(DnsMessageTest, RootNameParses) {
  Bytes q = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
  auto parsed = ParseDnsQuery(q);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->name.labels.empty());
  EXPECT_EQ(parsed->name.Text(), "");
  EXPECT_EQ(BuildDnsAnswer(*parsed, DnsRcode::kServFail).size(), q.size());
}

TEST(DnsMessageTest, AddressAnswerCarriesOneARecordForTheQuestion) {
  Bytes q = Query("Evil.example", 0x0100);
  auto parsed = ParseDnsQuery(q);
  ASSERT_TRUE(parsed.ok());
  Bytes a = BuildDnsAddressAnswer(*parsed, {198, 18, 0, 7}, 0x01020304);
  auto header = ParseDnsHeader(a);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->id, 0xbeef);
  EXPECT_TRUE(header->qr());
  EXPECT_TRUE(header->rd());
  EXPECT_EQ(header->rcode(), 0);
  EXPECT_EQ(header->qdcount, 1);
  EXPECT_EQ(header->ancount, 1);
  EXPECT_EQ(header->nscount + header->arcount, 0);
  // The question, byte for byte, then the record.
  ASSERT_EQ(a.size(), q.size() + 16);
  EXPECT_EQ(Bytes(a.begin() + 12, a.begin() + q.size()), Bytes(q.begin() + 12, q.end()));
  size_t offset = q.size();
  auto owner = ParseDnsName(a, &offset);
  ASSERT_TRUE(owner.ok()) << owner.status().ToString();
  EXPECT_EQ(owner->Text(), "Evil.example");
  EXPECT_EQ(offset, q.size() + 2) << "the owner name is a pointer to the question";
  EXPECT_EQ(Bytes(a.begin() + offset, a.end()),
            (Bytes{0, 1, 0, 1, 0x01, 0x02, 0x03, 0x04, 0, 4, 198, 18, 0, 7}));
}

}  // namespace
}  // namespace quell
