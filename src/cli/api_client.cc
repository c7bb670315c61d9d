#include "cli/api_client.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "common/unique_fd.h"

// GCC 12 misreads Asio's custom coroutine frame allocator as a new/delete mismatch
// (GCC bug 100485); the frames are allocated and freed by the same awaitable_frame_base.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace quell::cli {

// Where a download goes; see ApiClient::Download.
struct DownloadTarget {
  std::string path;
  const ApiClient::Progress* progress = nullptr;
};

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

struct Call {
  const ApiClientOptions& options;
  const ApiUrl& url;
  asio::ssl::context& tls;
  bhttp::request<bhttp::string_body> request;
  std::string where;  // "host:port" for messages and the Host header
  const DownloadTarget* download = nullptr;  // set: a 2xx body goes to this file
};

bool IsIpAddress(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Names the failure of one step for a person; a timeout is reported as such.
Status TransportError(const Call& call, const std::string& step,
                      const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) {
    return DeadlineExceeded(step + " " + call.where + ": timed out after " +
                            std::to_string(call.options.timeout.count()) + "s");
  }
  return Unavailable(step + " " + call.where + ": " + ec.message());
}

// Streams a response body into call.download->path (via "<path>.part", renamed when
// complete); a non-2xx body (an error message) is kept in the ApiResponse instead. Each read
// has its own timeout: a large download may take long, a stalled one may not.
asio::awaitable<Result<ApiResponse>> ReadIntoFile(Call& call,
                                                  beast::ssl_stream<beast::tcp_stream>& stream,
                                                  beast::flat_buffer& buffer) {
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // (none means 0 in Beast 1.74)
  co_await bhttp::async_read_header(stream, buffer, parser, token);
  if (ec) co_return TransportError(call, "cannot read the response from", ec);
  const int status = static_cast<int>(parser.get().result_int());
  const bool success = status / 100 == 2;
  const std::string part = call.download->path + ".part";
  UniqueFd out;
  if (success) {
    out.Reset(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out) co_return Internal("cannot write " + part + ": " + std::strerror(errno));
  }
  const uint64_t total = parser.content_length().value_or(0);
  uint64_t received = 0;
  std::string error_body;
  std::vector<char> piece(256 * 1024);
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    beast::get_lowest_layer(stream).expires_after(call.options.timeout);
    co_await bhttp::async_read(stream, buffer, parser, token);
    if (ec == bhttp::error::need_buffer) ec = {};
    const size_t n = piece.size() - parser.get().body().size;
    if (!ec && success) {
      for (size_t written = 0; written < n;) {
        ssize_t w = ::write(out.get(), piece.data() + written, n - written);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          const int err = errno;
          ::unlink(part.c_str());
          co_return Internal("cannot write " + part + ": " + std::strerror(err));
        }
        written += static_cast<size_t>(w);
      }
    } else if (!ec && error_body.size() < (1 << 20)) {
      error_body.append(piece.data(), n);
    }
    if (ec) {
      if (success) ::unlink(part.c_str());
      co_return TransportError(call, "download from", ec);
    }
    received += n;
    if (success && call.download->progress != nullptr && *call.download->progress) {
      (*call.download->progress)(received, total);
    }
  }
  if (success) {
    if (::fsync(out.get()) != 0 || ::rename(part.c_str(), call.download->path.c_str()) != 0) {
      const int err = errno;
      ::unlink(part.c_str());
      co_return Internal("cannot write " + call.download->path + ": " + std::strerror(err));
    }
  }
  co_return ApiResponse{status, std::string(parser.get()[bhttp::field::content_type]),
                        std::move(error_body)};
}

asio::awaitable<Result<ApiResponse>> Exchange(Call& call) {
  boost::system::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  auto executor = co_await asio::this_coro::executor;

  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(call.url.host, std::to_string(call.url.port),
                                                   token);
  if (ec) co_return Unavailable("cannot resolve " + call.url.host + ": " + ec.message());

  beast::ssl_stream<beast::tcp_stream> stream(executor, call.tls);
  SSL* ssl = stream.native_handle();
  const bool is_ip = IsIpAddress(call.url.host);
  if (!is_ip) SSL_set_tlsext_host_name(ssl, call.url.host.c_str());  // SNI takes names only
  if (!call.options.insecure) {
    // OpenSSL checks the name against the certificate's SANs during the handshake, and a
    // mismatch shows up as a verification result with a precise reason.
    int set = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), call.url.host.c_str())
                    : SSL_set1_host(ssl, call.url.host.c_str());
    if (set != 1) co_return Internal("cannot set the expected TLS peer name");
  }

  beast::tcp_stream& transport = beast::get_lowest_layer(stream);
  transport.expires_after(call.options.timeout);  // one deadline for the whole exchange
  co_await transport.async_connect(endpoints, token);
  if (ec) co_return TransportError(call, "cannot connect to", ec);

  co_await stream.async_handshake(asio::ssl::stream_base::client, token);
  if (ec) {
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      co_return Unauthenticated(std::string("TLS certificate verification failed: ") +
                                X509_verify_cert_error_string(verify) + " (server " +
                                call.where + ")");
    }
    co_return TransportError(call, "TLS handshake failed with", ec);
  }

  co_await bhttp::async_write(stream, call.request, token);
  if (ec) co_return TransportError(call, "cannot send the request to", ec);

  beast::flat_buffer buffer;
  if (call.download != nullptr) co_return co_await ReadIntoFile(call, stream, buffer);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(call.options.max_response_bytes);
  co_await bhttp::async_read(stream, buffer, parser, token);
  if (ec == bhttp::error::body_limit) {
    co_return ResourceExhausted("response from " + call.where + " exceeds " +
                                std::to_string(call.options.max_response_bytes) + " bytes");
  }
  if (ec) co_return TransportError(call, "cannot read the response from", ec);

  // The server closes after answering ("Connection: close"); no TLS shutdown is awaited.
  auto& message = parser.get();
  co_return ApiResponse{static_cast<int>(message.result_int()),
                        std::string(message[bhttp::field::content_type]),
                        std::move(message.body())};
}

// co_spawn in Boost 1.74 needs a default-constructible result; Result<T> is not.
asio::awaitable<void> Run(Call& call, Result<ApiResponse>& out) { out = co_await Exchange(call); }

}  // namespace

Result<ApiUrl> ParseApiUrl(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() < kScheme.size() || !std::equal(kScheme.begin(), kScheme.end(), url.begin(),
                                                 [](char a, char b) { return a == std::tolower(
                                                     static_cast<unsigned char>(b)); })) {
    return InvalidArgument("server URL must start with https:// (got '" + url + "')");
  }
  std::string_view rest = std::string_view(url).substr(kScheme.size());
  if (rest.find_first_of("?#@ \t\r\n") != rest.npos) {
    return InvalidArgument("server URL must be https://host[:port][/path] (got '" + url + "')");
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  ApiUrl out;
  if (slash != rest.npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    out.base_path = std::string(path);
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == authority.npos) return InvalidArgument("unterminated IPv6 address in '" + url + "'");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return InvalidArgument("bad port in '" + url + "'");
    if (!after.empty()) port = after.substr(1);
    if (!IsIpAddress(out.host)) return InvalidArgument("bad IPv6 address in '" + url + "'");
  } else {
    size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != authority.npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return InvalidArgument("server URL has no host: '" + url + "'");
  if (port.data() != nullptr) {
    unsigned value = 0;
    auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (err != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return InvalidArgument("bad port in '" + url + "'");
    }
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

ApiClient::ApiClient(ApiClientOptions options) : options_(std::move(options)) {}

Result<ApiResponse> ApiClient::Send(const std::string& method, const std::string& target,
                                    const std::string& body) const {
  return Perform(method, target, body, nullptr);
}

Result<ApiResponse> ApiClient::Download(const std::string& target, const std::string& path,
                                        const Progress& progress) const {
  return Download("GET", target, "", path, progress);
}

Result<ApiResponse> ApiClient::Download(const std::string& method, const std::string& target,
                                        const std::string& body, const std::string& path,
                                        const Progress& progress) const {
  const DownloadTarget download{.path = path, .progress = &progress};
  return Perform(method, target, body, &download);
}

Result<ApiResponse> ApiClient::Perform(const std::string& method, const std::string& target,
                                       const std::string& body,
                                       const DownloadTarget* download) const {
  QUELL_ASSIGN_OR_RETURN(ApiUrl url, ParseApiUrl(options_.base_url));
  if (target.empty() || target.front() != '/' ||
      target.find_first_of(" \t\r\n#") != target.npos) {
    return InvalidArgument("request target must start with '/' and contain no spaces: '" +
                           target + "'");
  }
  const bhttp::verb verb = bhttp::string_to_verb(method);
  if (verb == bhttp::verb::unknown) return InvalidArgument("unknown HTTP method '" + method + "'");

  asio::ssl::context tls(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (options_.insecure) {
    tls.set_verify_mode(asio::ssl::verify_none);
  } else {
    tls.set_verify_mode(asio::ssl::verify_peer);
    if (options_.ca_file.empty()) {
      tls.set_default_verify_paths(ec);
    } else {
      tls.load_verify_file(options_.ca_file, ec);
    }
    if (ec) {
      return InvalidArgument("cannot load CA certificates" +
                             (options_.ca_file.empty() ? "" : " from " + options_.ca_file) +
                             ": " + ec.message());
    }
  }

  const bool ipv6 = url.host.find(':') != std::string::npos;
  Call call{options_, url, tls, {verb, url.base_path + target, 11},
            (ipv6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port)};
  call.request.set(bhttp::field::host, call.where);
  call.request.set(bhttp::field::user_agent, "quell-cli/" QUELL_VERSION);
  call.request.set(bhttp::field::accept, download != nullptr ? "*/*" : "application/json");
  call.download = download;
  if (!options_.token.empty()) {
    call.request.set(bhttp::field::authorization, "Bearer " + options_.token);
  }
  if (!body.empty()) call.request.set(bhttp::field::content_type, "application/json");
  call.request.body() = body;
  call.request.keep_alive(false);
  call.request.prepare_payload();

  asio::io_context io;
  Result<ApiResponse> result = Internal("request did not complete");
  asio::co_spawn(io, Run(call, result), [&result](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      result = Internal(std::string("HTTPS request failed: ") + e.what());
    } catch (...) {
      result = Internal("HTTPS request failed");
    }
  });
  io.run();
  return result;
}

}  // namespace quell::cli
