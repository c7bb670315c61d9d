// The sandbox's fake network, inside-the-namespace half: turns the sandbox's own, fresh
// network namespace into one where every address is local and every TCP connection and DNS
// datagram ends at a socket the supervisor serves (fake_network.h). Runs in the sandbox's
// init before the sample, so it is part of the start-up budget: no ip/nft binaries are
// executed; the routes go through rtnetlink and the rules through libnftables.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>

#include "common/status.h"
#include "common/unique_fd.h"

namespace quell::sandbox {

struct SandboxNetworkSockets {
  UniqueFd tcp_listener;  // listening, IPv6 dual-stack (IPv4 only when the kernel has no IPv6)
  UniqueFd dns_udp;       // bound UDP, same family; replies must carry the datagram's own
                          // destination as source (IP(V6)_PKTINFO is enabled on it)
};

// What /etc/resolv.conf says inside the sandbox. Any address works (every address is local
// and UDP to port 53 is redirected to the resolver); this one is recognisable in reports.
inline constexpr char kSandboxResolvConf[] = "nameserver 10.53.53.53\n";

// The inode of this thread's network namespace (/proc/self/ns/net).
Result<ino_t> CurrentNetworkNamespaceInode();

// Configures the calling thread's network namespace, which must be the sandbox's own and
// fresh: loopback up; `local 0.0.0.0/0 dev lo table local` and `local ::/0 dev lo table
// local` (every address is this host's, nothing leaves); an nftables table `inet
// quell_sandbox` whose nat output chain redirects every TCP connection (except to the
// listener's own port) to the listener and every UDP datagram to port 53 to the resolver.
// Returns the two sockets, for the supervisor's FakeNetwork.
// Refuses with FailedPrecondition, before changing anything, when /proc/self/ns/net has the
// inode `host_netns_inode` (the caller reads it with CurrentNetworkNamespaceInode() in the
// host's namespace); InvalidArgument when it is 0. IPv6 parts are skipped only when the
// kernel has no IPv6 at all. REQUIRES: CAP_NET_ADMIN over the namespace.
Result<SandboxNetworkSockets> ConfigureSandboxNetwork(ino_t host_netns_inode);

// Reads a netlink reply: Ok when it holds the NLMSG_ERROR acknowledgement with error 0 for
// `seq`; the kernel's errno as Status when the acknowledgement carries one; Internal when
// the bytes are malformed or hold no acknowledgement for `seq`. Exposed for its unit test.
Status ParseNetlinkAck(std::span<const uint8_t> reply, uint32_t seq);

}  // namespace quell::sandbox
