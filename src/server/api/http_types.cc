#include "server/api/http_types.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/logging.h"

namespace quell::server::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kCancelled:
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kOk:
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

}  // namespace

std::string Request::Header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? std::string() : it->second;
}

Response Response::Json(int status, const nlohmann::json& body) {
  Response response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

Response Response::File(std::string path, std::string content_type,
                        std::string_view download_name) {
  Response response;
  response.content_type = std::move(content_type);
  response.file_path = std::move(path);
  response.headers.emplace_back("Content-Disposition",
                                "attachment; filename=\"" + std::string(download_name) + "\"");
  return response;
}

Response Response::Error(int status, std::string_view code, std::string_view message) {
  return Json(status, {{"error", {{"code", code}, {"message", message}}}});
}

Response Response::FromStatus(const Status& status) {
  if (status.code() == StatusCode::kInternal || status.ok()) {
    Logger("server.http")->error("internal error: {}", status.ToString());
    return Error(500, StatusCodeName(StatusCode::kInternal), "internal error");
  }
  return Error(HttpStatusFor(status.code()), StatusCodeName(status.code()), status.message());
}

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
      int lo = hi >= 0 ? HexValue(text[i + 2]) : -1;
      if (lo < 0) return InvalidArgument("malformed percent-escape in '" + std::string(text) + "'");
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return InvalidArgument("NUL byte in request target");
    out.push_back(c);
  }
  return out;
}

Result<RequestTarget> ParseRequestTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    return InvalidArgument("request target must start with '/'");
  }
  if (target.find('#') != std::string_view::npos) {
    return InvalidArgument("request target must not contain a fragment");
  }
  RequestTarget out;
  size_t question = target.find('?');
  std::string_view raw_path = target.substr(0, question);
  QUELL_ASSIGN_OR_RETURN(out.path, PercentDecode(raw_path, /*plus_is_space=*/false));

  // Splitting happens before decoding so that %2F inside a segment stays part of its value.
  std::string_view rest = raw_path.substr(1);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  for (size_t start = 0; !rest.empty() && start <= rest.size();) {
    size_t slash = std::min(rest.find('/', start), rest.size());
    QUELL_ASSIGN_OR_RETURN(std::string segment,
                           PercentDecode(rest.substr(start, slash - start), false));
    out.segments.push_back(std::move(segment));
    start = slash + 1;
  }

  if (question == std::string_view::npos) return out;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    QUELL_ASSIGN_OR_RETURN(std::string key, PercentDecode(pair.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      QUELL_ASSIGN_OR_RETURN(value, PercentDecode(pair.substr(eq + 1), true));
    }
    if (!out.query.emplace(key, std::move(value)).second) {
      return InvalidArgument("duplicate query parameter '" + key + "'");
    }
  }
  return out;
}

}  // namespace quell::server::http
