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
// Among equally literal patterns the first registered wins.
//
// WebSocket routes (AddWebSocket) are GET routes of the same table: they take part in the same
// matching, so a WebSocket pattern and an ordinary one compete by how literal they are.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "server/api/http_types.h"
#include "server/api/websocket.h"

namespace quell::server::http {

// What a route declares beyond its handler.
struct RouteOptions {
  // The largest request body this route accepts; 0 = the server's default
  // (ServerOptions::max_body_bytes). For uploads that need more (or less) than the rest.
  size_t max_body_bytes = 0;
};

// A route added with Router::AddWebSocket, as the server sees it.
struct WebSocketRoute {
  std::string pattern;
  UpgradeHandler handler;
  WebSocketOptions options;
};

class Router {
 public:
  // REQUIRES: `pattern` starts with '/', each {name} is non-empty, at most one per segment,
  // braces balanced. A malformed pattern is a programming error and aborts at startup.
  // Not thread-safe: register every route before the server starts.
  void Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});

  // Registers a WebSocket endpoint at `pattern` (same rules as Add). The server hands a GET
  // with `Upgrade: websocket` that resolves here to `handler` (see websocket.h); Dispatch
  // answers a plain GET with 426 UpgradeRequired and other methods with 405 (Allow: GET).
  void AddWebSocket(std::string pattern, UpgradeHandler handler, WebSocketOptions options = {});

  // For an upgrade request (the server has checked the Upgrade headers): parses
  // request.target into request.path and request.query, and when the route Dispatch would
  // pick for GET on that path is a WebSocket route, fills request.path_params and returns
  // that route. Otherwise (malformed target, no route, an ordinary route wins) nullptr, and
  // the request should go through Dispatch as usual. The pointer stays valid as long as the
  // router. Thread-safe (const after setup).
  const WebSocketRoute* MatchWebSocket(Request& request) const;

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
    std::shared_ptr<const WebSocketRoute> websocket;  // set for AddWebSocket routes
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
