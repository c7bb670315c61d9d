#include "server/api/router.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <set>
#include <string_view>
#include <utility>

#include "common/logging.h"

namespace quell::server::http {
namespace {

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

[[noreturn]] void BadPattern(const std::string& pattern, std::string_view why) {
  Logger("server.http")->critical("invalid route pattern '{}': {}", pattern, why);
  std::abort();
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler,
                 RouteOptions options) {
  if (pattern.empty() || pattern.front() != '/') BadPattern(pattern, "must start with '/'");
  Route route{std::move(method), pattern, {}, {}, std::move(handler), options, nullptr};
  std::string_view rest = std::string_view(pattern).substr(1);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  for (size_t start = 0; !rest.empty() && start <= rest.size();) {
    size_t slash = std::min(rest.find('/', start), rest.size());
    std::string_view text = rest.substr(start, slash - start);
    start = slash + 1;
    size_t open = text.find('{');
    size_t close = text.find('}');
    if (open == std::string_view::npos) {
      if (close != std::string_view::npos) BadPattern(pattern, "unbalanced '}'");
      if (text.empty()) BadPattern(pattern, "empty segment");
      route.segments.push_back({std::string(text), "", ""});
      route.rank.push_back(2);
      continue;
    }
    if (close == std::string_view::npos || close < open + 2) BadPattern(pattern, "bad {name}");
    std::string_view suffix = text.substr(close + 1);
    if (text.find('{', open + 1) != std::string_view::npos ||
        suffix.find('}') != std::string_view::npos) {
      BadPattern(pattern, "at most one {name} per segment");
    }
    route.segments.push_back({std::string(text.substr(0, open)),
                              std::string(text.substr(open + 1, close - open - 1)),
                              std::string(suffix)});
    route.rank.push_back(open == 0 && suffix.empty() ? 0 : 1);
  }
  routes_.push_back(std::move(route));
}

void Router::AddWebSocket(std::string pattern, UpgradeHandler handler,
                          WebSocketOptions options) {
  auto websocket = std::make_shared<const WebSocketRoute>(
      WebSocketRoute{pattern, std::move(handler), options});
  Add("GET", std::move(pattern), [](Request& request) {
    Response response = Response::Error(
        426, "UpgradeRequired", request.path + " is a WebSocket endpoint; send Upgrade: websocket");
    response.headers.emplace_back("Upgrade", "websocket");
    response.headers.emplace_back("Sec-WebSocket-Version", "13");
    return response;
  });
  routes_.back().websocket = std::move(websocket);
}

bool Router::Match(const Route& route, const std::vector<std::string>& segments,
                   std::map<std::string, std::string>& params) {
  if (route.segments.size() != segments.size()) return false;
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& pattern = route.segments[i];
    std::string_view value = segments[i];
    if (pattern.capture.empty()) {
      if (!EqualsIgnoreCase(pattern.prefix, value)) return false;
      continue;
    }
    size_t fixed = pattern.prefix.size() + pattern.suffix.size();
    if (value.size() <= fixed ||
        !EqualsIgnoreCase(pattern.prefix, value.substr(0, pattern.prefix.size())) ||
        !EqualsIgnoreCase(pattern.suffix, value.substr(value.size() - pattern.suffix.size()))) {
      return false;
    }
    params[pattern.capture] = std::string(
        value.substr(pattern.prefix.size(), value.size() - fixed));
  }
  return true;
}

const Router::Route* Router::Find(std::string_view method,
                                  const std::vector<std::string>& segments,
                                  std::map<std::string, std::string>& best_params,
                                  std::set<std::string>* allowed) const {
  const Route* best = nullptr;
  for (const Route& route : routes_) {
    std::map<std::string, std::string> params;
    if (!Match(route, segments, params)) continue;
    if (allowed != nullptr) allowed->insert(route.method);
    if (route.method != method) continue;
    if (best == nullptr || route.rank > best->rank) {
      best = &route;
      best_params = std::move(params);
    }
  }
  return best;
}

size_t Router::BodyLimit(std::string_view method, std::string_view target,
                         size_t fallback) const {
  Result<RequestTarget> parsed = ParseRequestTarget(target);
  if (!parsed.ok()) return fallback;
  std::map<std::string, std::string> params;
  const Route* route = Find(method, parsed->segments, params, nullptr);
  if (route == nullptr || route->options.max_body_bytes == 0) return fallback;
  return route->options.max_body_bytes;
}

const WebSocketRoute* Router::MatchWebSocket(Request& request) const {
  Result<RequestTarget> target = ParseRequestTarget(request.target);
  if (!target.ok()) return nullptr;
  request.path = std::move(target->path);
  request.query = std::move(target->query);
  std::map<std::string, std::string> params;
  const Route* best = Find("GET", target->segments, params, nullptr);
  if (best == nullptr || best->websocket == nullptr) return nullptr;
  request.path_params = std::move(params);
  return best->websocket.get();
}

Response Router::Dispatch(Request& request) const {
  Result<RequestTarget> target = ParseRequestTarget(request.target);
  if (!target.ok()) return Response::FromStatus(target.status());
  request.path = std::move(target->path);
  request.query = std::move(target->query);

  std::map<std::string, std::string> best_params;
  std::set<std::string> allowed;
  const Route* best = Find(request.method, target->segments, best_params, &allowed);
  if (best == nullptr && allowed.empty()) {
    return Response::Error(404, "NotFound", "no such resource: " + request.path);
  }
  if (best == nullptr) {
    std::string allow;
    for (const std::string& method : allowed) allow += (allow.empty() ? "" : ", ") + method;
    Response response = Response::Error(
        405, "MethodNotAllowed", request.method + " is not allowed on " + request.path);
    response.headers.emplace_back("Allow", std::move(allow));
    return response;
  }

  request.path_params = std::move(best_params);
  try {
    return best->handler(request);
  } catch (const std::exception& e) {
    Logger("server.http")->error("handler for {} {} threw: {}", best->method, best->pattern,
                                 e.what());
  } catch (...) {
    Logger("server.http")->error("handler for {} {} threw a non-std exception", best->method,
                                 best->pattern);
  }
  return Response::Error(500, "Internal", "internal error");
}

}  // namespace quell::server::http
