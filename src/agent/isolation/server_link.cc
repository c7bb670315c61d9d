#include "agent/isolation/server_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace quell::agent {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Status ConnectOnce(const std::string& address, uint16_t port, std::chrono::milliseconds timeout) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    length = sizeof *v4;
  } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    length = sizeof *v6;
  } else {
    return InvalidArgument("not an IP address: " + address);
  }
  Fd fd(::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return ErrnoStatus("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) == 0) return Status::Ok();
  if (errno != EINPROGRESS) return ErrnoStatus("connect");
  pollfd pfd{.fd = fd.get(), .events = POLLOUT, .revents = 0};
  int ready;
  do {
    ready = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return ErrnoStatus("poll");
  if (ready == 0) return DeadlineExceeded("no answer within " + std::to_string(timeout.count()) + " ms");
  int error = 0;
  socklen_t error_length = sizeof error;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &error_length);
  if (error != 0) return ErrnoStatus("connect", error);
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::string>> ResolveServerAddresses(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return Unavailable("cannot resolve server host '" + host + "': " + ::gai_strerror(rc));
  }
  std::vector<std::string> addresses;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = ai->ai_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
        ::inet_ntop(ai->ai_family, raw, text, sizeof text) != nullptr) {
      addresses.emplace_back(text);
    }
  }
  ::freeaddrinfo(found);
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  if (addresses.empty()) return Unavailable("server host '" + host + "' has no IP address");
  return addresses;
}

Status ProbeTcpLink(const std::vector<std::string>& addresses, uint16_t port,
                    std::chrono::milliseconds timeout) {
  std::string failures;
  for (const std::string& address : addresses) {
    Status connected = ConnectOnce(address, port, timeout);
    if (connected.ok()) return Status::Ok();
    failures += (failures.empty() ? "" : "; ") + address + ": " + connected.message();
  }
  return Unavailable("no TCP connection to the server on port " + std::to_string(port) + " (" +
                     failures + ")");
}

}  // namespace quell::agent
