#include "server/app/server.h"

#include <filesystem>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <charconv>
#include <optional>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/files.h"
#include "common/logging.h"
#include "server/actions/action_center.h"
#include "server/alerts/alert_service.h"
#include "server/api/api_context.h"
#include "server/api/http_server.h"
#include "server/auth/api_tokens.h"
#include "server/analysis/deep_analysis_service.h"
#include "server/blobs/blob_store.h"
#include "server/blobs/download_links.h"
#include "server/gateway/agent_gateway.h"
#include "server/gateway/artifact_transfer.h"
#include "server/gateway/enrollment.h"
#include "server/gateway/presence.h"
#include "server/indicators/indicator_publisher.h"
#include "server/live/live_broker.h"
#include "server/gateway/session_registry.h"
#include "server/pki/certificate_authority.h"
#include "server/store/sqlite/sqlite_store.h"

namespace quell::server {

// Everything the server runs, in start order; destroyed in reverse.
struct Server::Parts {
  std::unique_ptr<Store> store;
  std::unique_ptr<CertificateAuthority> ca;
  std::unique_ptr<BlobStore> blobs;  // artifacts from devices
  std::optional<DownloadLinks> download_links;
  SessionRegistry sessions;
  Presence presence;
  std::unique_ptr<ActionCenter> actions;
  std::unique_ptr<AlertService> alerts;
  std::unique_ptr<IndicatorPublisher> indicators;
  std::unique_ptr<AgentGateway> gateway;
  std::unique_ptr<ArtifactTransferService> transfer;  // uploads from agents into `blobs`
  std::unique_ptr<DeepAnalysisService> deep_analysis;  // samples detonated in quell-sandbox
  std::unique_ptr<grpc::Server> grpc_server;
  int agent_port = 0;
  std::unique_ptr<ApiContext> api;
  std::unique_ptr<live::LiveSessionBroker> live;  // interactive live response sessions
  http::Router router;
  std::unique_ptr<http::HttpsServer> https;
  std::jthread housekeeping;  // times out overdue actions, flushes presence
};

namespace {

// quell-sandbox beside this binary (an installation), else where the build tree puts it;
// "" when neither exists.
std::string FindSandboxBinary() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  for (const auto& candidate : {self.parent_path() / "quell-sandbox",
                                self.parent_path() / "../../sandbox/quell-sandbox"}) {
    if (::access(candidate.c_str(), X_OK) == 0) {
      return std::filesystem::weakly_canonical(candidate, ec).string();
    }
  }
  return "";
}

}  // namespace

Result<std::pair<std::string, uint16_t>> ParseListenAddress(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    return InvalidArgument("'" + text + "' is not host:port");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  std::string port_text = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      host.empty()) {
    return InvalidArgument("'" + text + "' is not host:port");
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

Server::Server(ServerOptions options) : options_(std::move(options)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  auto log = Logger("server");
  auto parts = std::make_unique<Parts>();
  QUELL_RETURN_IF_ERROR(MakeDirs(options_.data_dir, 0700));

  QUELL_ASSIGN_OR_RETURN(parts->store, OpenSqliteStore(options_.data_dir + "/quell.db"));
  QUELL_ASSIGN_OR_RETURN(CertificateAuthority ca,
                         CertificateAuthority::LoadOrCreate(
                             {.dir = options_.data_dir + "/pki", .server_names = options_.tls_names}));
  parts->ca = std::make_unique<CertificateAuthority>(std::move(ca));
  QUELL_ASSIGN_OR_RETURN(parts->blobs, BlobStore::Open(options_.data_dir + "/blobs"));
  QUELL_ASSIGN_OR_RETURN(DownloadLinks links,
                         DownloadLinks::Open(options_.data_dir + "/download-links.key"));
  parts->download_links.emplace(std::move(links));

  parts->actions = std::make_unique<ActionCenter>(
      *parts->store, SystemClock::Instance(),
      ActionCenterOptions{.action_timeout_ms = options_.action_timeout_seconds * 1000});
  parts->actions->SetDispatcher(&parts->sessions);
  parts->alerts = std::make_unique<AlertService>(
      *parts->store, SystemClock::Instance(),
      AlertServiceOptions{.dedup_window_ms = options_.alert_dedup_window_seconds * 1000});

  parts->indicators =
      std::make_unique<IndicatorPublisher>(*parts->store, SystemClock::Instance());
  parts->indicators->Start();

  std::string sandbox = options_.sandbox_binary.empty() ? FindSandboxBinary()
                                                        : options_.sandbox_binary;
  if (sandbox.empty()) {
    log->warn("quell-sandbox not found beside quell-server: deep analysis is unavailable");
  } else if (::access(sandbox.c_str(), X_OK) != 0) {
    return InvalidArgument("--sandbox-binary " + sandbox + " is not an executable file");
  }
  parts->deep_analysis = std::make_unique<DeepAnalysisService>(
      *parts->store, *parts->blobs, *parts->actions, parts->alerts.get(), SystemClock::Instance(),
      DeepAnalysisOptions{
          .sandbox_binary = sandbox,
          .work_dir = options_.data_dir + "/analysis",
          .sample_time_limit = std::chrono::seconds(options_.deep_analysis_time_limit_seconds)});
  QUELL_RETURN_IF_ERROR(parts->deep_analysis->Start());

  // Agents.
  QUELL_ASSIGN_OR_RETURN(auto agent_addr, ParseListenAddress(options_.agent_listen));
  parts->gateway = std::make_unique<AgentGateway>(
      *parts->store, *parts->ca, *parts->actions, parts->sessions, parts->presence,
      SystemClock::Instance(),
      AgentGatewayOptions{.heartbeat_interval_seconds = options_.heartbeat_interval_seconds,
                          .alerts = parts->alerts.get(),
                          .indicators = parts->indicators.get()});
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.agent_listen, AgentGateway::Credentials(*parts->ca),
                           &parts->agent_port);
  builder.RegisterService(parts->gateway.get());
  parts->transfer = std::make_unique<ArtifactTransferService>(*parts->store, *parts->blobs,
                                                              SystemClock::Instance());
  builder.RegisterService(parts->transfer.get());
  // Keepalive pings let both sides notice a dead peer behind a silent network.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Agents send little; small per-connection buffers keep memory per agent down
  // (bench/: about 6 KiB less per connection at 2,000 agents).
  builder.AddChannelArgument(GRPC_ARG_TCP_READ_CHUNK_SIZE, 4096);
  builder.AddChannelArgument(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, 1024);
  builder.AddChannelArgument(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, 16384);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  parts->grpc_server = builder.BuildAndStart();
  if (!parts->grpc_server || parts->agent_port == 0) {
    return Unavailable("cannot listen for agents on " + options_.agent_listen +
                       " (address in use or not local?)");
  }

  // People and tools.
  QUELL_ASSIGN_OR_RETURN(auto api_addr, ParseListenAddress(options_.api_listen));
  parts->api = std::make_unique<ApiContext>(ApiContext{
      *parts->store, *parts->actions, parts->sessions, SystemClock::Instance(),
      static_cast<UnixMillis>(options_.heartbeat_interval_seconds) * 3 * 1000,
      &parts->presence});
  parts->api->alerts = parts->alerts.get();
  parts->api->indicators = parts->indicators.get();
  parts->api->blobs = parts->blobs.get();
  parts->api->deep_analysis = parts->deep_analysis.get();
  parts->api->download_links = &*parts->download_links;
  parts->api->download_link_lifetime_ms = options_.download_link_lifetime_seconds * 1000;
  parts->api->max_library_file_bytes = options_.max_library_file_bytes;  // before the routes
  AddApiRoutes(parts->router, *parts->api);
  parts->live = std::make_unique<live::LiveSessionBroker>(
      *parts->api,
      live::BrokerOptions{.idle_timeout_ms = options_.live_response_idle_timeout_seconds * 1000});
  parts->gateway->SetLiveOutputSink(parts->live.get());
  live::AddLiveResponseRoutes(parts->router, *parts->api, *parts->live);
  parts->live->Start();
  parts->https = std::make_unique<http::HttpsServer>(
      http::ServerOptions{.address = api_addr.first,
                          .port = api_addr.second,
                          .cert_pem = parts->ca->server_cert_pem() + parts->ca->ca_cert_pem(),
                          .key_pem = parts->ca->server_key_pem(),
                          .max_body_bytes = options_.max_body_bytes,
                          .threads = options_.api_threads},
      parts->router);
  QUELL_RETURN_IF_ERROR(parts->https->Start().WithContext("REST API on " + options_.api_listen));

  parts->housekeeping = std::jthread([p = parts.get()](std::stop_token stop) {
    std::mutex mu;
    std::condition_variable_any cv;
    while (!stop.stop_requested()) {
      if (Result<size_t> expired = p->actions->ExpireOverdue(); !expired.ok()) {
        Logger("server.actions")
            ->error("timing out actions failed: {}", expired.status().ToString());
      }
      if (Status flushed = p->presence.Flush(*p->store); !flushed.ok()) {
        Logger("server.gateway")->error("writing last-seen times failed: {}", flushed.ToString());
      }
      std::unique_lock lock(mu);
      cv.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
    }
  });

  std::string host_for_clients = api_addr.first == "0.0.0.0" ? "127.0.0.1" : api_addr.first;
  nlohmann::json info = {
      {"api", host_for_clients + ":" + std::to_string(parts->https->port())},
      {"agent", agent_addr.first + ":" + std::to_string(parts->agent_port)},
      {"pid", ::getpid()},
      {"caCertificate", options_.data_dir + "/pki/ca.pem"}};
  QUELL_RETURN_IF_ERROR(WriteFileAtomic(options_.data_dir + "/server.json", info.dump(2), 0644));
  log->info("quell-server {} listening: REST https://{}:{} agents {}:{} data {}", QUELL_VERSION,
            api_addr.first, parts->https->port(), agent_addr.first, parts->agent_port,
            options_.data_dir);
  parts_ = std::move(parts);
  return Status::Ok();
}

void Server::Wait() {
  std::unique_lock lock(mu_);
  stopped_cv_.wait(lock, [this] { return stop_requested_; });
}

void Server::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_requested_ = true;
  }
  stopped_cv_.notify_all();
  if (!parts_) return;
  parts_->housekeeping.request_stop();
  if (parts_->housekeeping.joinable()) parts_->housekeeping.join();
  parts_->https->Stop();
  parts_->live->Stop();  // agents are told their sessions ended while still connected
  parts_->gateway->SetLiveOutputSink(nullptr);
  parts_->indicators->Stop();
  parts_->deep_analysis->Stop();  // a running sandbox is told to clean up; requeued at start
  parts_->grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (Status flushed = parts_->presence.Flush(*parts_->store); !flushed.ok()) {
    Logger("server.gateway")->warn("last-seen times not written at stop: {}", flushed.ToString());
  }
  parts_.reset();
  Logger("server")->info("quell-server stopped");
}

uint16_t Server::api_port() const { return parts_ ? parts_->https->port() : 0; }
uint16_t Server::agent_port() const {
  return parts_ ? static_cast<uint16_t>(parts_->agent_port) : 0;
}

Result<AdminResult> CreateApiTokenInDataDir(const std::string& data_dir, const std::string& name,
                                            const std::string& role_name) {
  std::optional<Role> role = ParseRole(role_name);
  if (!role) return InvalidArgument("role must be viewer, responder or admin");
  QUELL_RETURN_IF_ERROR(MakeDirs(data_dir, 0700));
  QUELL_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenSqliteStore(data_dir + "/quell.db"));
  QUELL_ASSIGN_OR_RETURN(CreatedApiToken created,
                         CreateApiToken(*store, SystemClock::Instance(), name, *role));
  return AdminResult{created.secret};
}

Result<AdminResult> CreateEnrollmentTokenInDataDir(const std::string& data_dir, int uses,
                                                   int64_t ttl_seconds) {
  QUELL_RETURN_IF_ERROR(MakeDirs(data_dir, 0700));
  QUELL_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenSqliteStore(data_dir + "/quell.db"));
  QUELL_ASSIGN_OR_RETURN(std::string secret, CreateEnrollmentToken(*store, SystemClock::Instance(),
                                                                   uses, ttl_seconds * 1000));
  return AdminResult{secret};
}

}  // namespace quell::server
