// Maps (method, path) to a Handler. Patterns follow the Defender API's URL shapes:
//
//   "/api/machines/{id}/isolate"                   {name} captures one non-empty segment
//   "/api/machines/{id}/StopAndQuarantineFile"     literals match case-insensitively
//   "/api/machineactions/{id}/GetLiveResponseResultDownloadLink(index={index})"
//                                                  a segment may hold literal text around
//                                                  one capture
//
// Captured values are percent-decoded per segment, so "%2F" arrives as "/" inside the value.
// When several patterns match, the most literal wins, segment by segment from the left
// ("/api/machines/findbytag" beats "/api/machines/{id}"), regardless of registration order.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "server/api/http_types.h"

namespace quell::server::http {

// What a route declares beyond its handler.
struct RouteOptions {
  // The largest request body this route accepts; 0 = the server's default
  // (ServerOptions::max_body_bytes). For uploads that need more (or less) than the rest.
  size_t max_body_bytes = 0;
};

class Router {
 public:
  // REQUIRES: `pattern` starts with '/', each {name} is non-empty, at most one per segment,
  // braces balanced. A malformed pattern is a programming error and aborts at startup.
  // Not thread-safe: register every route before the server starts.
  void Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});

  // The body limit of the route Dispatch would run for (method, target), known from the
  // request line alone so the server can apply it before reading the body: the route's
  // RouteOptions::max_body_bytes, or `fallback` when it declares none or nothing matches
  // (a 400/404/405 answer reads no more than the default). Thread-safe (const after setup).
  size_t BodyLimit(std::string_view method, std::string_view target, size_t fallback) const;

  // Parses request.target into request.path and request.query (400 on a malformed target),
  // fills request.path_params and runs the matching handler. 404 JSON error for an unknown
  // path, 405 with an Allow header for a known path and another method. An exception from a
  // handler is logged and becomes a 500 JSON error. Thread-safe (const after setup).
  Response Dispatch(Request& request) const;

 private:
  // One path segment of a pattern: literal text, or prefix{capture}suffix.
  struct Segment {
    std::string prefix;   // the whole segment when capture is empty
    std::string capture;  // parameter name, "" for a literal segment
    std::string suffix;
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    std::vector<int> rank;  // per segment: 2 literal, 1 literal around a capture, 0 capture
    Handler handler;
    RouteOptions options;
  };

  // True if `route` matches; fills `params`.
  static bool Match(const Route& route, const std::vector<std::string>& segments,
                    std::map<std::string, std::string>& params);

  // The most literal route for `method` among those matching `segments` (nullptr if none),
  // its captures in `params`, and in `allowed` every method some matching route has.
  const Route* Find(std::string_view method, const std::vector<std::string>& segments,
                    std::map<std::string, std::string>& params,
                    std::set<std::string>* allowed) const;

  std::vector<Route> routes_;
};

}  // namespace quell::server::http
