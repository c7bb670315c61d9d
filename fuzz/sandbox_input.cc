// What a sample controls in quell-sandbox: the DNS datagrams its fake resolver answers and the
// socket addresses the tracer reads from its memory. The resolver never reads out of bounds,
// answers with a message that parses back to the same id, and records at most what it
// answered; a decoded address is one of the three families, with a port only for inet ones.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "common/dns_message.h"
#include "sandbox/fake_network.h"
#include "sandbox/syscall_names.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> datagram(data, size);
  quell::sandbox::SinkholeResolver resolver;
  quell::sandbox::NetworkLog log;
  std::vector<uint8_t> reply = resolver.Answer(datagram, 0, log);
  if (!reply.empty()) {
    auto header = quell::ParseDnsHeader(reply);
    auto asked = quell::ParseDnsHeader(datagram);
    if (!header.ok() || !asked.ok() || header->id != asked->id || !header->qr()) std::abort();
  }
  if (log.dns.size() > 1) std::abort();

  auto address = quell::sandbox::DecodeSockaddr(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (address) {
    const std::string& f = address->family;
    if (f != "inet" && f != "inet6" && f != "unix") std::abort();
    if (f == "unix" && address->port != 0) std::abort();
  }
  return 0;
}
