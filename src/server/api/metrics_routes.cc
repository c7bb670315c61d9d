// GET /metrics: what an operator asks about, in the Prometheus text format. Gauges are read
// from the store at scrape time, so they are right after a restart and across replicas.
#include <fmt/format.h>

#include "server/api/api_context.h"

namespace quell::server {
namespace {

using http::Request;
using http::Response;

Response Metrics(ApiContext& api, Request& request) {
  if (auto auth = Authorize(api, request, Role::kViewer); !auth.ok()) {
    return Response::FromStatus(auth.status());
  }
  Result<std::map<ActionStatus, int64_t>> actions = api.store.CountActionsByStatus();
  if (!actions.ok()) return Response::FromStatus(actions.status());
  Result<std::vector<Device>> devices = api.store.ListDevices();
  if (!devices.ok()) return Response::FromStatus(devices.status());

  std::string out;
  out += "# HELP quell_agents_connected Agent streams open on this server.\n";
  out += "# TYPE quell_agents_connected gauge\n";
  out += fmt::format("quell_agents_connected {}\n", api.sessions.ConnectedCount());

  int64_t active = 0, inactive = 0, offboarded = 0, isolated = 0;
  UnixMillis now = api.clock.Now();
  for (const Device& stored : *devices) {
    Device d = WithPresence(api, stored);
    if (d.offboarded) {
      ++offboarded;
      continue;
    }
    (now - d.last_seen <= api.inactive_after_ms ? active : inactive)++;
    if (d.isolation != IsolationState::kNotIsolated) ++isolated;
  }
  out += "# HELP quell_devices Onboarded devices by health, and offboarded devices.\n";
  out += "# TYPE quell_devices gauge\n";
  out += fmt::format("quell_devices{{healthStatus=\"Active\"}} {}\n", active);
  out += fmt::format("quell_devices{{healthStatus=\"Inactive\"}} {}\n", inactive);
  out += fmt::format("quell_devices{{healthStatus=\"Offboarded\"}} {}\n", offboarded);
  out += "# HELP quell_devices_isolated Onboarded devices whose last isolation action left them isolated.\n";
  out += "# TYPE quell_devices_isolated gauge\n";
  out += fmt::format("quell_devices_isolated {}\n", isolated);

  out += "# HELP quell_machine_actions Machine actions by status.\n";
  out += "# TYPE quell_machine_actions gauge\n";
  for (ActionStatus s : {ActionStatus::kPending, ActionStatus::kInProgress,
                         ActionStatus::kSucceeded, ActionStatus::kFailed, ActionStatus::kTimeOut,
                         ActionStatus::kCancelled}) {
    auto it = actions->find(s);
    out += fmt::format("quell_machine_actions{{status=\"{}\"}} {}\n", ActionStatusName(s),
                       it == actions->end() ? 0 : it->second);
  }
  Response r;
  r.status = 200;
  r.content_type = "text/plain; version=0.0.4";
  r.body = std::move(out);
  return r;
}

}  // namespace

void AddMetricsRoutes(http::Router& router, ApiContext& api) {
  router.Add("GET", "/metrics", [&api](Request& r) { return Metrics(api, r); });
}

}  // namespace quell::server
