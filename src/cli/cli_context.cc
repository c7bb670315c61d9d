#include "cli/cli_context.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "cli/live_render.h"
#include "common/files.h"

namespace quell::cli {

Result<ApiClientOptions> ResolveClientOptions(const CliContext& ctx) {
  const char* home = std::getenv("HOME");
  QUELL_ASSIGN_OR_RETURN(
      CliSettings settings,
      ResolveCliSettings({.flag_server = ctx.flag_server,
                          .flag_token = ctx.flag_token,
                          .flag_ca = ctx.flag_ca,
                          .getenv = [](const char* name) -> std::optional<std::string> {
                            const char* v = std::getenv(name);
                            if (v == nullptr) return std::nullopt;
                            return std::string(v);
                          },
                          .read_file = [](const std::string& path) { return ReadFile(path); },
                          .home = home ? home : ""}));
  return ApiClientOptions{.base_url = settings.server,
                          .token = settings.token,
                          .ca_file = settings.ca_file,
                          .insecure = ctx.insecure};
}

ApiClient* Client(CliContext& ctx) {
  if (ctx.client) return &*ctx.client;
  Result<ApiClientOptions> options = ResolveClientOptions(ctx);
  if (!options.ok()) {
    ctx.err << "error: " << options.status().message() << "\n";
    return nullptr;
  }
  ctx.client.emplace(std::move(*options));
  return &*ctx.client;
}

CallResult CallApi(CliContext& ctx, const std::string& method, const std::string& target,
                   const nlohmann::json& body) {
  ApiClient* client = Client(ctx);
  if (client == nullptr) return {kExitTransport, nullptr};
  Result<ApiResponse> response =
      client->Send(method, target, body.is_null() ? "" : body.dump());
  if (!response.ok()) {
    ctx.err << "error: " << response.status().message() << "\n";
    return {kExitTransport, nullptr};
  }
  nlohmann::json parsed = nlohmann::json::parse(response->body, nullptr, false);
  if (response->status < 200 || response->status >= 300) {
    std::string message = response->body;
    std::string code;
    if (parsed.is_object() && parsed.contains("error")) {
      message = parsed["error"].value("message", message);
      code = parsed["error"].value("code", "");
    }
    ctx.err << "error: " << EscapeControls(message) << " (HTTP " << response->status
            << (code.empty() ? "" : " " + code) << ")\n";
    return {kExitApiError, nullptr};
  }
  return {0, parsed.is_discarded() ? nlohmann::json(nullptr) : parsed};
}

std::string ODataFilterParameter(
    const std::vector<std::pair<std::string, std::string>>& terms) {
  std::string filter;
  for (const auto& [field, value] : terms) {
    if (value.empty()) continue;
    std::string quoted = "'";
    for (char c : value) {
      quoted += c;
      if (c == '\'') quoted += '\'';  // OData escapes a quote by doubling it
    }
    filter += (filter.empty() ? "" : " and ") + field + " eq " + quoted + "'";
  }
  return filter.empty() ? "" : "&$filter=" + UrlEncode(filter);
}

std::string UrlEncode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ResolveMachineId(CliContext& ctx, const std::string& id_or_name) {
  ApiClient* client = Client(ctx);
  if (client == nullptr) return "";
  Result<ApiResponse> direct = client->Send("GET", "/api/machines/" + UrlEncode(id_or_name));
  if (direct.ok() && direct->status == 200) return id_or_name;
  CallResult all = CallApi(ctx, "GET", "/api/machines");
  if (all.exit_code != 0) return "";
  std::vector<std::string> matches;
  for (const auto& m : all.body["value"]) {
    if (m.value("computerDnsName", "") == id_or_name) matches.push_back(m["id"]);
  }
  if (matches.size() == 1) return matches.front();
  if (matches.empty()) {
    ctx.err << "error: no machine with id or name '" << id_or_name << "'\n";
  } else {
    ctx.err << "error: " << matches.size() << " machines are named '" << id_or_name
            << "'; use the id\n";
  }
  return "";
}

std::string Field(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "-";
}

bool PrintJsonIfAsked(CliContext& ctx, const nlohmann::json& body) {
  if (ctx.json) ctx.out << body.dump(2) << "\n";
  return ctx.json;
}

void PrintFields(CliContext& ctx, const nlohmann::json& body,
                 std::initializer_list<const char*> keys) {
  for (const char* key : keys) ctx.out << key << ": " << Field(body, key) << "\n";
}

int WaitForAction(CliContext& ctx, const std::string& action_id, int timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    CallResult r = CallApi(ctx, "GET", "/api/machineactions/" + UrlEncode(action_id));
    if (r.exit_code != 0) return r.exit_code;
    std::string status = r.body.value("status", "");
    if (status != last) {
      ctx.err << "  " << status;
      if (r.body["statusMessage"].is_string()) ctx.err << ": " << EscapeControls(r.body["statusMessage"].get<std::string>());
      ctx.err << "\n";
      last = status;
    }
    if (status == "Succeeded") return 0;
    if (status == "Failed" || status == "TimeOut" || status == "Cancelled") return kExitApiError;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ctx.err << "still " << last << " after " << timeout_seconds
          << " s; follow it with: quell actions show " << action_id << "\n";
  return kExitApiError;
}

void PrintActionLine(CliContext& ctx, const nlohmann::json& action) {
  ctx.out << "action " << Field(action, "id") << ": " << Field(action, "type") << " "
          << Field(action, "computerDnsName") << " is " << Field(action, "status") << "\n";
}

int RequestMachineAction(CliContext& ctx, const std::string& machine, const std::string& route,
                         const nlohmann::json& body, bool wait, int wait_seconds) {
  const std::string id = ResolveMachineId(ctx, machine);
  if (id.empty()) return kExitApiError;
  CallResult r = CallApi(ctx, "POST", "/api/machines/" + UrlEncode(id) + "/" + route, body);
  if (r.exit_code != 0) return r.exit_code;
  if (!PrintJsonIfAsked(ctx, r.body)) PrintActionLine(ctx, r.body);
  return wait ? WaitForAction(ctx, r.body["id"], wait_seconds) : 0;
}

}  // namespace quell::cli
