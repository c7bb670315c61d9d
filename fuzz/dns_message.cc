// DNS queries through the agent's DNS filter parser (any local process can send one): the
// parser never reads out of bounds or loops, a parsed name obeys RFC 1035's limits, and the
// answer built for it echoes the question so that it parses again to the same name.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "common/dns_message.h"

using quell::BuildDnsAnswer;
using quell::BuildDnsHeaderOnlyAnswer;
using quell::DnsRcode;
using quell::ParseDnsHeader;
using quell::ParseDnsName;
using quell::ParseDnsQuery;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> message(data, size);
  auto query = ParseDnsQuery(message);
  if (!query.ok()) {
    if (auto header = ParseDnsHeader(message); header.ok()) {
      if (BuildDnsHeaderOnlyAnswer(*header, DnsRcode::kFormErr).size() != 12) std::abort();
    }
  } else {
    size_t wire = 1;
    for (const auto& label : query->name.labels) {
      if (label.empty() || label.size() > quell::kDnsMaxLabel) std::abort();
      wire += 1 + label.size();
    }
    if (wire > quell::kDnsMaxNameWire) std::abort();
    const auto answer = BuildDnsAnswer(*query, DnsRcode::kNxDomain);
    auto again = ParseDnsHeader(answer);
    if (!again.ok() || again->id != query->header.id || !again->qr() || again->rcode() != 3) {
      std::abort();
    }
    size_t offset = quell::kDnsHeaderSize;
    auto name = ParseDnsName(answer, &offset);
    if (!name.ok() || name->labels != query->name.labels || offset + 4 != answer.size()) {
      std::abort();
    }
  }
  // Every offset as a name start: pointers anywhere, loops anywhere.
  for (size_t start = 0; start < size && start < 64; ++start) {
    size_t offset = start;
    if (ParseDnsName(message, &offset).ok() && (offset <= start || offset > size)) std::abort();
  }
  return 0;
}
