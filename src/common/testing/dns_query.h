// A DNS query in wire form, for tests of what answers one (the agent's DNS filter, the
// sandbox's fake resolver): the header and one question of class IN.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace quell::testing {

struct DnsQueryFields {
  uint16_t id = 0x1234;
  uint16_t flags = 0x0100;  // a standard query, recursion desired
  uint16_t qdcount = 1;
  uint16_t qtype = 1;       // A
};

inline std::vector<uint8_t> DnsQueryBytes(const std::string& name, DnsQueryFields f = {}) {
  auto hi = [](uint16_t v) { return static_cast<uint8_t>(v >> 8); };
  auto lo = [](uint16_t v) { return static_cast<uint8_t>(v & 0xff); };
  std::vector<uint8_t> b = {hi(f.id), lo(f.id), hi(f.flags), lo(f.flags), hi(f.qdcount),
                            lo(f.qdcount), 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    b.push_back(static_cast<uint8_t>(dot - start));
    b.insert(b.end(), name.begin() + start, name.begin() + dot);
    start = dot + 1;
  }
  b.push_back(0);
  b.insert(b.end(), {hi(f.qtype), lo(f.qtype), 0, 1});
  return b;
}

}  // namespace quell::testing
