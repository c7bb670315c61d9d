// quell-microbench: hot paths measured alone, so a regression shows up without a fleet.
//   isolation ruleset generation (agent), OData query parsing and MachineAction JSON (REST),
//   and the action center's create + agent-report path and the heartbeat write on a real
//   SQLite store in /tmp (durable commits, as the server makes them).
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "agent/isolation/isolation_policy.h"
#include "common/clock.h"
#include "server/actions/action_center.h"
#include "server/api/odata_query.h"
#include "server/api/resource_json.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell {
namespace {

void BM_BuildIsolationRuleset(benchmark::State& state) {
  agent::IsolationPolicy policy{.type = state.range(0) == 0 ? agent::IsolationType::kFull
                                                            : agent::IsolationType::kSelective,
                                .server_addresses = {"10.77.0.1", "fd77::1"},
                                .server_port = 8444};
  for (int64_t i = 0; i < state.range(0); ++i) {
    policy.allow.push_back({.cidr = "10.1." + std::to_string(i / 256) + "." +
                                    std::to_string(i % 256) + "/32",
                            .port = static_cast<uint16_t>(1000 + i),
                            .protocol = agent::AllowProtocol::kTcp});
  }
  for (auto _ : state) benchmark::DoNotOptimize(agent::BuildIsolationRuleset(policy));
}
BENCHMARK(BM_BuildIsolationRuleset)->Arg(0)->Arg(16)->Arg(256);

void BM_ParseODataQuery(benchmark::State& state) {
  const std::map<std::string, std::string> query = {
      {"$filter",
       "status eq 'Pending' and type eq 'Isolate' and machineId eq "
       "'2b1f6c1e-93e5-4c41-8f1d-6f7c2f0e9a11'"},
      {"$top", "100"},
      {"$skip", "20"}};
  const std::vector<std::string> fields = {"status", "type", "machineId", "requestor"};
  for (auto _ : state) benchmark::DoNotOptimize(server::ParseODataQuery(query, fields, 10'000));
}
BENCHMARK(BM_ParseODataQuery);

void BM_MachineActionToJson(benchmark::State& state) {
  server::MachineAction action{
      .id = "7f0c2a8e-4a7b-4b7e-9a43-1c2d3e4f5a6b",
      .type = "Isolate",
      .scope = "Selective",
      .requestor = "alice",
      .requestor_comment = "suspicious outbound traffic",
      .request_source = "PublicApi",
      .title = "Isolate device",
      .status = server::ActionStatus::kSucceeded,
      .machine_id = "2b1f6c1e-93e5-4c41-8f1d-6f7c2f0e9a11",
      .computer_dns_name = "web-01.example.internal",
      .creation_time = 1'760'000'000'000,
      .last_update_time = 1'760'000'001'234,
      .expiration_time = 1'760'259'200'000,
      .parameters_json = R"({"isolationType":"Selective","allow":["10.0.0.5/32:22/tcp"]})",
      .result_json = R"({"rules":12})"};
  for (auto _ : state) benchmark::DoNotOptimize(server::MachineActionToJson(action).dump());
}
BENCHMARK(BM_MachineActionToJson);

// A SQLite store in a fresh /tmp directory with `devices` devices, removed afterwards.
class TempStore {
 public:
  explicit TempStore(int devices) {
    char dir[] = "/tmp/quell-microbench-XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    dir_ = dir;
    auto store = server::OpenSqliteStore(dir_ + "/quell.db");
    if (!store.ok()) std::abort();
    store_ = std::move(store).value();
    for (int i = 0; i < devices; ++i) {
      if (!store_->CreateDevice({.id = DeviceId(i), .computer_dns_name = "h" + std::to_string(i)})
               .ok()) {
        std::abort();
      }
    }
  }
  ~TempStore() {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  static std::string DeviceId(int i) { return "device-" + std::to_string(i); }
  server::Store& store() { return *store_; }

 private:
  std::string dir_;
  std::unique_ptr<server::Store> store_;
};

// One DiagnosticNoop from REST creation to Succeeded, minus the network: what the server's
// store does for each action the load benchmark times.
void BM_ActionCenterCreateAndSucceed(benchmark::State& state) {
  constexpr int kDevices = 100;
  TempStore temp(kDevices);
  server::ActionCenter center(temp.store(), SystemClock::Instance());
  const server::ActionTypeSpec* spec = server::FindActionType("DiagnosticNoop");
  auto body = spec->parse_body({{"Comment", "microbench"}});
  if (!body.ok()) std::abort();
  int i = 0;
  for (auto _ : state) {
    auto action = center.Create({.machine_id = TempStore::DeviceId(i++ % kDevices),
                                 .spec = spec,
                                 .body = *body,
                                 .requestor = "bench",
                                 .request_source = "PublicApi"});
    if (!action.ok()) {
      state.SkipWithError(action.status().ToString().c_str());
      break;
    }
    Status applied = center.ApplyAgentReport(
        action->machine_id,
        {.action_id = action->id, .event = server::ActionEvent::kAgentSucceeded,
         .progress_percent = 100, .result_json = "{}"});
    if (!applied.ok()) {
      state.SkipWithError(applied.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ActionCenterCreateAndSucceed)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The write every heartbeat costs: N agents heartbeating every H seconds make N/H of these
// per second, all through the store's one connection.
void BM_StoreTouchDevice(benchmark::State& state) {
  constexpr int kDevices = 1000;
  TempStore temp(kDevices);
  int i = 0;
  UnixMillis now = 1'760'000'000'000;
  for (auto _ : state) {
    Status s = temp.store().TouchDevice(TempStore::DeviceId(i++ % kDevices), ++now);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StoreTouchDevice)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace quell

BENCHMARK_MAIN();
