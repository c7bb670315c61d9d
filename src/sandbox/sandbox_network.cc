#include "sandbox/sandbox_network.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>


namespace quell::sandbox {
namespace {

// One rtnetlink request, built in a fixed buffer: header, family message, attributes.
class NetlinkRequest {
 public:
  NetlinkRequest(uint16_t type, uint16_t flags, uint32_t seq) {
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_len = NLMSG_LENGTH(0);
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    h->nlmsg_seq = seq;
    h->nlmsg_pid = 0;
  }
  // Appends `size` bytes at the next aligned offset (the family message or an attribute's
  // payload). The buffer is sized for the few fixed messages below; overflowing is a bug.
  template <typename T>
  T* Append() {
    auto* h = Header();
    const size_t at = NLMSG_ALIGN(h->nlmsg_len);
    if (at + NLMSG_ALIGN(sizeof(T)) > buf_.size()) return nullptr;
    h->nlmsg_len = static_cast<uint32_t>(at + sizeof(T));
    return reinterpret_cast<T*>(buf_.data() + at);
  }
  bool AddU32Attribute(uint16_t type, uint32_t value) {
    auto* h = Header();
    const size_t at = NLMSG_ALIGN(h->nlmsg_len);
    const size_t len = RTA_LENGTH(sizeof(value));
    if (at + RTA_ALIGN(len) > buf_.size()) return false;
    auto* rta = reinterpret_cast<rtattr*>(buf_.data() + at);
    rta->rta_type = type;
    rta->rta_len = static_cast<uint16_t>(len);
    std::memcpy(RTA_DATA(rta), &value, sizeof(value));
    h->nlmsg_len = static_cast<uint32_t>(at + RTA_ALIGN(len));
    return true;
  }
  nlmsghdr* Header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  std::span<const uint8_t> Bytes() {
    return {buf_.data(), Header()->nlmsg_len};
  }

 private:
  alignas(nlmsghdr) std::array<uint8_t, 128> buf_{};
};

// Sends `request` and waits (at most 1 s) for its acknowledgement.
Status Transact(int fd, NetlinkRequest& request, const char* what) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  const auto bytes = request.Bytes();
  if (::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) != static_cast<ssize_t>(bytes.size())) {
    return ErrnoStatus(std::string("rtnetlink send: ") + what);
  }
  alignas(nlmsghdr) std::array<uint8_t, 4096> reply;
  // Only our own requests are on this socket, so the next message is our ack; a few tries
  // allow for an unrelated message without ever waiting unboundedly.
  for (int attempt = 0; attempt < 4; ++attempt) {
    const ssize_t n = ::recv(fd, reply.data(), reply.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(std::string("rtnetlink receive: ") + what);
    }
    Status s = ParseNetlinkAck({reply.data(), static_cast<size_t>(n)},
                               request.Header()->nlmsg_seq);
    if (s.code() != StatusCode::kInternal) return s.WithContext(what);
  }
  return Internal(std::string("rtnetlink: no acknowledgement for ") + what);
}

Status SetLinkUp(int fd, int ifindex, uint32_t seq) {
  NetlinkRequest r(RTM_NEWLINK, 0, seq);
  auto* ifi = r.Append<ifinfomsg>();
  if (ifi == nullptr) return Internal("netlink request too large");
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return Transact(fd, r, "set lo up");
}

// `local <any>/0 dev lo table local`: the whole address family is this host's.
Status AddLocalDefaultRoute(int fd, int family, int ifindex, uint32_t seq) {
  NetlinkRequest r(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, seq);
  auto* rt = r.Append<rtmsg>();
  if (rt == nullptr) return Internal("netlink request too large");
  rt->rtm_family = static_cast<uint8_t>(family);
  rt->rtm_dst_len = 0;
  rt->rtm_table = RT_TABLE_LOCAL;
  rt->rtm_protocol = RTPROT_BOOT;
  rt->rtm_scope = RT_SCOPE_HOST;
  rt->rtm_type = RTN_LOCAL;
  if (!r.AddU32Attribute(RTA_OIF, static_cast<uint32_t>(ifindex)) ||
      !r.AddU32Attribute(RTA_TABLE, RT_TABLE_LOCAL)) {
    return Internal("netlink request too large");
  }
  return Transact(fd, r, family == AF_INET ? "add local 0.0.0.0/0" : "add local ::/0");
}

Status ConfigureRoutes(bool ipv6) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return ErrnoStatus("rtnetlink socket");
  const timeval timeout{.tv_sec = 1, .tv_usec = 0};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) != 0) {
    return ErrnoStatus("rtnetlink SO_RCVTIMEO");
  }
  const int lo = static_cast<int>(::if_nametoindex("lo"));
  if (lo == 0) return ErrnoStatus("no loopback interface");
  QUELL_RETURN_IF_ERROR(SetLinkUp(fd.get(), lo, 1));
  QUELL_RETURN_IF_ERROR(AddLocalDefaultRoute(fd.get(), AF_INET, lo, 2));
  if (ipv6) QUELL_RETURN_IF_ERROR(AddLocalDefaultRoute(fd.get(), AF_INET6, lo, 3));
  return Status::Ok();
}

Status SetIntOption(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) != 0) return ErrnoStatus(what);
  return Status::Ok();
}

// Binds a socket on the wildcard address, port chosen by the kernel: IPv6 dual-stack (so
// one socket takes both families' redirected traffic) or IPv4.
Result<UniqueFd> BindWildcard(bool ipv6, int type) {
  UniqueFd fd(::socket(ipv6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus("socket");
  if (ipv6) {
    QUELL_RETURN_IF_ERROR(SetIntOption(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY"));
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      return ErrnoStatus("bind [::]:0");
    }
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      return ErrnoStatus("bind 0.0.0.0:0");
    }
  }
  return fd;
}

Result<uint16_t> LocalPort(int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof(a);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return ErrnoStatus("getsockname");
  }
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&a)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

Result<SandboxNetworkSockets> BindSockets(bool ipv6) {
  SandboxNetworkSockets s;
  QUELL_ASSIGN_OR_RETURN(s.tcp_listener, BindWildcard(ipv6, SOCK_STREAM));
  if (::listen(s.tcp_listener.get(), 128) != 0) return ErrnoStatus("listen");
  QUELL_ASSIGN_OR_RETURN(s.dns_udp, BindWildcard(ipv6, SOCK_DGRAM));
  // The resolver answers from the address each query was sent to (after the redirect:
  // loopback), so conntrack maps the answer back to the address the sample asked.
  if (ipv6) {
    QUELL_RETURN_IF_ERROR(
        SetIntOption(s.dns_udp.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO"));
  } else {
    QUELL_RETURN_IF_ERROR(SetIntOption(s.dns_udp.get(), IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO"));
  }
  return s;
}

struct NftContextDeleter {
  void operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }
};

Status InstallRedirects(uint16_t tcp_port, uint16_t dns_port) {
  std::unique_ptr<nft_ctx, NftContextDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return Internal("nft_ctx_new failed");
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0) {
    return Internal("cannot buffer nft output");
  }
  const std::string tcp = std::to_string(tcp_port);
  const std::string dns = std::to_string(dns_port);
  const std::string rules =
      "table inet quell_sandbox {\n"
      " chain redirect_out {\n"
      "  type nat hook output priority -100; policy accept;\n"
      "  meta l4proto tcp tcp dport != " + tcp + " redirect to :" + tcp + "\n"
      "  meta l4proto udp udp dport 53 redirect to :" + dns + "\n"
      " }\n"
      "}\n";
  if (nft_run_cmd_from_buffer(ctx.get(), rules.c_str()) != 0) {
    const char* err = nft_ctx_get_error_buffer(ctx.get());
    return Internal(std::string("nft: ") + (err != nullptr ? err : "failed"));
  }
  return Status::Ok();
}

bool KernelHasIpv6() {
  UniqueFd probe(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  return probe.valid() || errno != EAFNOSUPPORT;
}

}  // namespace

Result<ino_t> CurrentNetworkNamespaceInode() {
  struct stat st {};
  if (::stat("/proc/self/ns/net", &st) != 0) return ErrnoStatus("stat /proc/self/ns/net");
  return st.st_ino;
}

Status ParseNetlinkAck(std::span<const uint8_t> reply, uint32_t seq) {
  size_t at = 0;
  while (reply.size() - at >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    std::memcpy(&h, reply.data() + at, sizeof(h));
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > reply.size() - at) {
      return Internal("malformed netlink reply");
    }
    if (h.nlmsg_type == NLMSG_ERROR && h.nlmsg_seq == seq) {
      if (h.nlmsg_len < NLMSG_LENGTH(sizeof(int))) return Internal("truncated netlink ack");
      int error = 0;
      std::memcpy(&error, reply.data() + at + NLMSG_HDRLEN, sizeof(error));
      if (error == 0) return Status::Ok();
      return ErrnoStatus("rtnetlink", error < 0 ? -error : error);
    }
    at += NLMSG_ALIGN(h.nlmsg_len);
    if (at > reply.size()) break;
  }
  return Internal("no netlink acknowledgement for the request");
}

Result<SandboxNetworkSockets> ConfigureSandboxNetwork(ino_t host_netns_inode) {
  if (host_netns_inode == 0) return InvalidArgument("host network namespace inode not given");
  QUELL_ASSIGN_OR_RETURN(const ino_t current, CurrentNetworkNamespaceInode());
  if (current == host_netns_inode) {
    return FailedPrecondition(
        "refusing to configure the fake network: this is the host's network namespace");
  }
  const bool ipv6 = KernelHasIpv6();
  QUELL_ASSIGN_OR_RETURN(SandboxNetworkSockets sockets, BindSockets(ipv6));
  QUELL_ASSIGN_OR_RETURN(const uint16_t tcp_port, LocalPort(sockets.tcp_listener.get()));
  QUELL_ASSIGN_OR_RETURN(const uint16_t dns_port, LocalPort(sockets.dns_udp.get()));
  QUELL_RETURN_IF_ERROR(ConfigureRoutes(ipv6).WithContext("sandbox network routes"));
  QUELL_RETURN_IF_ERROR(InstallRedirects(tcp_port, dns_port).WithContext("sandbox network rules"));
  return sockets;
}

}  // namespace quell::sandbox
