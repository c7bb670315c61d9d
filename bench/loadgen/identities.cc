#include "bench/loadgen/identities.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/channel/enrollment.h"
#include "common/files.h"

namespace quell::bench {
namespace {

std::string CachePath(const std::string& dir, size_t index) {
  return dir + "/agent-" + std::to_string(index) + ".json";
}

std::optional<agent::Identity> LoadCached(const std::string& dir, size_t index) {
  Result<std::string> text = ReadFile(CachePath(dir, index));
  if (!text.ok()) return std::nullopt;
  nlohmann::json value = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!value.is_object() || !value.contains("deviceId") || !value.contains("key") ||
      !value.contains("cert")) {
    return std::nullopt;
  }
  return agent::Identity{value["deviceId"].get<std::string>(), value["key"].get<std::string>(),
                         value["cert"].get<std::string>()};
}

Status SaveCached(const std::string& dir, size_t index, const agent::Identity& identity) {
  nlohmann::json value = {
      {"deviceId", identity.device_id}, {"key", identity.key_pem}, {"cert", identity.cert_pem}};
  return WriteFileAtomic(CachePath(dir, index), value.dump(), 0600);
}

// Makes `dir` hold identities of the server whose CA is `ca_pem`; drops any of another CA.
Status PrepareCache(const std::string& dir, const std::string& ca_pem) {
  QUELL_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  Result<std::string> cached_ca = ReadFile(dir + "/ca.pem");
  if (cached_ca.ok() && *cached_ca == ca_pem) return Status::Ok();
  QUELL_ASSIGN_OR_RETURN(std::vector<std::string> files, ListFiles(dir));
  for (const std::string& file : files) {
    if (file.starts_with("agent-")) QUELL_RETURN_IF_ERROR(RemoveFile(dir + "/" + file));
  }
  return WriteFileAtomic(dir + "/ca.pem", ca_pem, 0600);
}

}  // namespace

std::string SimHostname(size_t index) {
  return "sim-" + std::to_string(index) + ".loadgen.quell.invalid";
}

Result<EnrollResult> EnrollFleet(const agent::ServerEndpoint& endpoint,
                                 const EnrollOptions& options) {
  EnrollResult result;
  result.identities.resize(options.count);
  std::vector<size_t> missing;
  if (!options.cache_dir.empty()) {
    QUELL_RETURN_IF_ERROR(PrepareCache(options.cache_dir, endpoint.ca_pem));
    for (size_t i = 0; i < options.count; ++i) {
      if (auto cached = LoadCached(options.cache_dir, i)) {
        result.identities[i] = std::move(*cached);
        ++result.from_cache;
      } else {
        missing.push_back(i);
      }
    }
  } else {
    for (size_t i = 0; i < options.count; ++i) missing.push_back(i);
  }

  auto start = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  std::mutex error_mu;
  Status first_error = Status::Ok();
  auto worker = [&] {
    for (size_t k = next++; k < missing.size(); k = next++) {
      {
        std::lock_guard lock(error_mu);
        if (!first_error.ok()) return;
      }
      size_t index = missing[k];
      quell::v1::Inventory inventory;
      inventory.set_hostname(SimHostname(index));
      inventory.set_os_platform("Linux");
      inventory.set_agent_version("quell-loadgen");
      Result<agent::Identity> identity =
          agent::Enroll(endpoint, options.token, inventory, std::chrono::seconds(60));
      Status saved = identity.ok() && !options.cache_dir.empty()
                         ? SaveCached(options.cache_dir, index, *identity)
                         : identity.status();
      if (!saved.ok()) {
        std::lock_guard lock(error_mu);
        if (first_error.ok()) {
          first_error = saved.WithContext("enrolling " + SimHostname(index));
        }
        return;
      }
      result.identities[index] = std::move(*identity);
    }
  };
  std::vector<std::jthread> workers;
  size_t threads = std::max<size_t>(1, std::min(options.concurrency, missing.size()));
  for (size_t t = 0; t < threads && !missing.empty(); ++t) workers.emplace_back(worker);
  workers.clear();  // joins
  QUELL_RETURN_IF_ERROR(first_error);
  result.enrolled = missing.size();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace quell::bench
