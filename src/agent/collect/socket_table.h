// The socket table: TCP and UDP sockets (IPv4 and IPv6) of the reader's network namespace,
// from <proc_root>/net/{tcp,tcp6,udp,udp6}, each with the processes holding it open. Used by
// the investigation package's "Network connections" topic and by live response's
// `connections` command.
//
// Owners are found by scanning <proc_root>/<pid>/fd for "socket:[<inode>]" links; a process
// whose fds cannot be read (permissions, exited mid-walk) simply owns nothing, so unprivileged
// readers see owners for their own processes only. Parsers are pure functions over text.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quell::agent::collect {

struct SocketOwner {
  pid_t pid = 0;
  std::string name;  // comm

  friend bool operator==(const SocketOwner&, const SocketOwner&) = default;
};

struct SocketRecord {
  std::string proto;  // "tcp", "tcp6", "udp", "udp6"
  std::string local_address;   // "127.0.0.1", "::1", "::ffff:10.0.0.1"
  uint16_t local_port = 0;
  std::string remote_address;
  uint16_t remote_port = 0;
  // TCP: "LISTEN", "ESTABLISHED", "TIME_WAIT", ...; UDP: "UNCONN" (bound, not connected) or
  // "ESTABLISHED" (connected), as ss(8) names them.
  std::string state;
  uint32_t uid = 0;
  uint64_t inode = 0;  // 0 for sockets without one (TIME_WAIT)
  std::vector<SocketOwner> owners;  // sorted by pid
  // False when owners is empty and some process's fds could not be read: the owner may be
  // hidden from this reader rather than absent.
  bool owners_known = true;
};

// Whether a socket accepts traffic from others: a listening TCP socket or an unconnected UDP
// socket (the "listening ports" view).
bool IsListening(const SocketRecord& s);

// Every socket of the four tables, in table order. Missing tables are skipped (IPv6 may be
// disabled); NotFound only when none of them can be read.
Result<std::vector<SocketRecord>> ListSockets(const std::string& proc_root);

nlohmann::json SocketsToJson(const std::vector<SocketRecord>& sockets);

// A fixed-width table, header first: proto, local, remote, state, uid, pid/name (owners joined
// with ','; "-" when none, "?" when the owner could not be determined). Addresses print as "a.b.c.d:port" and "[v6]:port", port 0 of a
// listening or unconnected socket as "*".
std::string SocketsTableText(const std::vector<SocketRecord>& sockets);

// --- pure parsers ---------------------------------------------------------------------------

// "0100007F" (IPv4) or 32 hex digits (IPv6): the kernel prints each 32-bit word of the
// network-order address as a native-endian integer. nullopt if malformed.
std::optional<std::string> DecodeProcNetAddress(std::string_view hex);
// "0A" -> "LISTEN" for TCP; UDP uses the TCP codes 01 (connected) and 07 (unconnected).
std::string SocketStateName(bool tcp, uint8_t code);
// One /proc/net/{tcp,udp}[6] table; the header and malformed lines are skipped.
std::vector<SocketRecord> ParseProcNet(std::string_view proto, std::string_view text);
// The inode of an fd link target "socket:[N]"; nullopt for anything else.
std::optional<uint64_t> ParseSocketLink(std::string_view link_target);
// inode -> owners for every process in `proc_root` (each pid once per inode, sorted).
// `complete`, when given, is set to false if some live process's fds could not be read.
std::map<uint64_t, std::vector<SocketOwner>> MapSocketOwners(const std::string& proc_root,
                                                             bool* complete = nullptr);

}  // namespace quell::agent::collect
