// Request targets from the network through ParseRequestTarget and Router.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/api/router.h"

namespace {

using quell::server::http::Request;
using quell::server::http::Response;
using quell::server::http::Router;

const Router& FuzzRouter() {
  static const Router* router = [] {
    auto* r = new Router;
    auto ok = [](Request&) { return Response{}; };
    r->Add("GET", "/api/machines", ok);
    r->Add("GET", "/api/machines/{id}", ok);
    r->Add("POST", "/api/machines/{id}/StopAndQuarantineFile", ok);
    r->Add("GET", "/api/machineactions/{id}/GetLiveResponseResultDownloadLink(index={index})",
           ok);
    return r;
  }();
  return *router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto target = quell::server::http::ParseRequestTarget(input);
  if (target.ok()) {
    // Decoding refuses NUL, so no decoded part may carry one.
    if (target->path.find('\0') != std::string::npos) std::abort();
    for (const auto& [key, value] : target->query) {
      if (key.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
        std::abort();
      }
    }
  }
  Request request;
  request.method = size % 2 ? "GET" : "POST";
  request.target = std::string(input);
  Response response = FuzzRouter().Dispatch(request);
  if (response.status != 200 && response.status != 400 && response.status != 404 &&
      response.status != 405) {
    std::abort();
  }
  return 0;
}
