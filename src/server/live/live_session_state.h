// The broker's record of one session and its commands (live_broker.h), shared by the files
// that implement LiveSessionBroker: live_broker.cc (sessions, relay to the agent, timers,
// audit) and live_server_commands.cc (the commands the server answers itself).
// Internal to src/server/live/.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "server/live/live_broker.h"
#include "server/live/live_line.h"

namespace quell::server::live {

struct EvpDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using Sha256Ctx = std::unique_ptr<EVP_MD_CTX, EvpDeleter>;

inline Sha256Ctx NewSha256() {
  Sha256Ctx ctx(EVP_MD_CTX_new());
  if (ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) ctx.reset();
  return ctx;
}

struct LiveSessionBroker::Command {
  uint32_t id = 0;
  std::string line;
  ParsedLine parsed;
  const CommandSpec* spec = nullptr;
  bool background = false;          // now (fg clears it)
  bool started_background = false;  // as started (jobs lists these)
  UnixMillis start = 0;
  UnixMillis end = 0;
  bool done = false;
  std::string status;  // set when done
  std::string error;
  std::string kept;    // the first max_kept_output_bytes of output
  bool truncated = false;
  uint64_t output_bytes = 0;
  Sha256Ctx sha = NewSha256();
  // Agent commands.
  std::shared_ptr<AgentLink> link;  // the stream the command was sent on
  UnixMillis deadline = 0;          // start + limit + grace
  std::optional<UnixMillis> cancel_requested;
  // Server commands that follow an action.
  std::string action_id;
  std::string last_report;
  nlohmann::json artifact;  // null, or {"name","size","sha256"}
};

struct LiveSessionBroker::Session {
  std::string id;  // the action id
  std::string device_id;
  std::string computer_dns_name;
  ApiToken token;
  std::shared_ptr<http::WebSocketConnection> conn;
  UnixMillis opened = 0;
  UnixMillis last_activity = 0;
  std::string cwd = "/";
  uint32_t next_id = 1;
  std::map<uint32_t, Command> commands;
  std::optional<uint32_t> foreground;
};

}  // namespace quell::server::live
