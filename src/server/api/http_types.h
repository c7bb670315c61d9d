// The REST edge's request and response values, and the pure parsing of request targets.
// Nothing here does I/O: HttpsServer fills a Request from the wire, Router::Dispatch parses
// its target and picks a Handler, the Handler returns a Response.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace quell::server::http {

struct Request {
  std::string method;                              // "GET", "POST", ... (case-sensitive)
  std::string target;                              // raw request target incl. query
  // path and query are filled from target by Router::Dispatch before the handler runs.
  std::string path;                                // percent-decoded path, no query
  std::map<std::string, std::string> query;        // percent-decoded ($filter, $top, ...)
  std::map<std::string, std::string> path_params;  // filled by Router from {name} segments
  std::map<std::string, std::string> headers;      // names lower-cased; repeats joined by ", "
  std::string body;
  std::string remote_address;                      // peer IP, "" when not from the network

  // The value of header `lower_name`, "" when absent.
  std::string Header(std::string_view lower_name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers. Content-Type and Content-Length are set by the server from the fields
  // above; do not add them here.
  std::vector<std::pair<std::string, std::string>> headers;

  // When set, the body is streamed from this file and `body` is ignored: a download of any
  // size never sits in memory. A file that cannot be opened is answered with a 500.
  std::string file_path;
  // The file at file_path is a temporary made for this response (e.g. an encrypted zip): it
  // is unlinked as soon as it is open, so it is gone however the transfer ends.
  bool remove_file_when_open = false;

  // `body` serialized compactly; invalid UTF-8 in strings is replaced, never thrown on.
  static Response Json(int status, const nlohmann::json& body);
  // 200 streaming the file at `path` as an attachment named `download_name` (a plain file
  // name, no quotes or path separators).
  static Response File(std::string path, std::string content_type, std::string_view download_name);
  // {"error":{"code":code,"message":message}}
  static Response Error(int status, std::string_view code, std::string_view message);
  // Maps a non-OK Status: InvalidArgument/FailedPrecondition 400, Unauthenticated 401,
  // PermissionDenied 403, NotFound 404, AlreadyExists 409, ResourceExhausted 429,
  // Cancelled/Unavailable 503, DeadlineExceeded 504, Internal 500. code = StatusCodeName.
  // Internal messages are logged and replaced by "internal error" (they may describe server
  // internals). An OK status is a caller bug and also yields 500.
  static Response FromStatus(const Status& status);
};

// Runs on a server IO thread, concurrently with other handlers: it must be thread-safe and
// should not block for long (it holds one of the few IO threads).
using Handler = std::function<Response(Request&)>;

// A request target split into its parts. Only origin-form ("/path?query") is accepted.
struct RequestTarget {
  std::string path;                   // percent-decoded, for display and logging
  std::vector<std::string> segments;  // each raw segment decoded on its own, so an encoded
                                      // "/" (%2F) stays inside its segment; a trailing
                                      // slash adds no empty segment ("/a/" == "/a")
  std::map<std::string, std::string> query;  // '+' means space; "k" alone maps to ""
};

// InvalidArgument for: not starting with '/', bad or truncated %-escapes, a NUL byte after
// decoding, a duplicate query parameter (ambiguous, so refused rather than guessed), a
// fragment ('#').
Result<RequestTarget> ParseRequestTarget(std::string_view target);

// Decodes %XX escapes; with `plus_is_space` (query strings) also '+'. InvalidArgument on a
// malformed escape or a decoded NUL.
Result<std::string> PercentDecode(std::string_view text, bool plus_is_space);

}  // namespace quell::server::http
