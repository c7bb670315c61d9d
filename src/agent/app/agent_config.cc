#include "agent/app/agent_config.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <functional>
#include <map>

#include "common/files.h"

namespace quell::agent {

std::string ConfigProblem::ToString() const {
  if (line > 0) return file + ":" + std::to_string(line) + ": " + message;
  return file + ": " + message;
}

std::string AgentConfigLoad::ProblemsText() const {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += "\n";
    out += p.ToString();
  }
  return out;
}

Status SplitHostPort(std::string_view text, std::string& host, uint16_t& port) {
  std::string_view port_text;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return InvalidArgument("expected \"[v6-address]:port\"");
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return InvalidArgument("expected \"host:port\"");
    }
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (host.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      value == 0 || value > 65535) {
    return InvalidArgument("expected \"host:port\" with a port in 1..65535");
  }
  port = static_cast<uint16_t>(value);
  return Status::Ok();
}

namespace {

// Walks one YAML mapping, dispatching each key to its reader and collecting problems.
class Reader {
 public:
  Reader(const std::string& file, std::vector<ConfigProblem>& problems)
      : file_(file), problems_(problems) {}

  void Problem(const YAML::Node& at, std::string message) {
    problems_.push_back({file_, at.Mark().is_null() ? 0 : at.Mark().line + 1, std::move(message)});
  }
  void Problem(std::string message) { problems_.push_back({file_, 0, std::move(message)}); }

  void String(const YAML::Node& node, const std::string& key, std::string& out) {
    if (!node.IsScalar()) return Problem(node, key + " must be a string");
    out = node.Scalar();
  }

  void Uint(const YAML::Node& node, const std::string& key, uint32_t lo, uint32_t hi,
            uint32_t& out) {
    const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
    if (!node.IsScalar()) return Problem(node, key + " must be a number in " + range);
    const std::string& text = node.Scalar();
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi) {
      return Problem(node, key + " must be " + range);
    }
    out = static_cast<uint32_t>(value);
  }

  void AllowRules(const YAML::Node& node, const std::string& key, std::vector<AllowRule>& out) {
    if (!node.IsSequence()) return Problem(node, key + " must be a list of strings");
    for (const auto& item : node) {
      if (!item.IsScalar()) {
        Problem(item, key + " entries must be strings");
        continue;
      }
      auto rule = ParseAllowRule(item.Scalar());
      if (!rule.ok()) {
        Problem(item, key + ": " + rule.status().message());
        continue;
      }
      out.push_back(*rule);
    }
  }

  void Uint64(const YAML::Node& node, const std::string& key, uint64_t lo, uint64_t hi,
              uint64_t& out) {
    const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
    if (!node.IsScalar()) return Problem(node, key + " must be a number in " + range);
    const std::string& text = node.Scalar();
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi) {
      return Problem(node, key + " must be " + range);
    }
    out = value;
  }

  void Strings(const YAML::Node& node, const std::string& key, std::vector<std::string>& out) {
    if (!node.IsSequence()) return Problem(node, key + " must be a list of strings");
    out.clear();
    for (const auto& item : node) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        Problem(item, key + " entries must be non-empty strings");
        continue;
      }
      out.push_back(item.Scalar());
    }
  }

  using KeyReader = std::function<void(const YAML::Node&)>;
  // Calls the reader of each key present; unknown keys are problems. `prefix` names the map.
  void Map(const YAML::Node& node, const std::string& prefix,
           const std::map<std::string, KeyReader>& readers) {
    if (node.IsNull()) return;
    if (!node.IsMap()) return Problem(node, (prefix.empty() ? "the file" : prefix) +
                                                " must be a mapping of keys to values");
    for (const auto& entry : node) {
      const std::string key = entry.first.as<std::string>("");
      auto it = readers.find(key);
      if (it == readers.end()) {
        Problem(entry.first, "unknown key " + prefix + key);
        continue;
      }
      it->second(entry.second);
    }
  }

 private:
  const std::string& file_;
  std::vector<ConfigProblem>& problems_;
};

}  // namespace

AgentConfigLoad ParseAgentConfig(std::string_view yaml, const std::string& file_name) {
  AgentConfigLoad load;
  AgentConfig& c = load.config;
  Reader r(file_name, load.problems);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    load.problems.push_back({file_name, e.mark.is_null() ? 0 : e.mark.line + 1, e.msg});
    return load;
  }

  YAML::Node server_node;
  bool server_seen = false;
  bool scan_clam_dirs_seen = false;  // unset: the default dirs, which depend on state_dir
  bool scan_cache_seen = false;
  try {
    r.Map(root, "",
          {
              {"server", [&](const YAML::Node& n) {
                 server_node = n;
                 server_seen = true;
                 r.String(n, "server", c.server);
               }},
              {"server_name", [&](const YAML::Node& n) { r.String(n, "server_name", c.server_name); }},
              {"ca_cert", [&](const YAML::Node& n) { r.String(n, "ca_cert", c.ca_cert); }},
              {"enrollment_token",
               [&](const YAML::Node& n) { r.String(n, "enrollment_token", c.enrollment_token); }},
              {"enrollment_token_file",
               [&](const YAML::Node& n) {
                 r.String(n, "enrollment_token_file", c.enrollment_token_file);
               }},
              {"state_dir", [&](const YAML::Node& n) { r.String(n, "state_dir", c.state_dir); }},
              {"computer_name",
               [&](const YAML::Node& n) { r.String(n, "computer_name", c.computer_name); }},
              {"heartbeat_interval_seconds",
               [&](const YAML::Node& n) {
                 r.Uint(n, "heartbeat_interval_seconds", 1, 3600, c.heartbeat_interval_seconds);
               }},
              {"file_sightings_interval_seconds",
               [&](const YAML::Node& n) {
                 r.Uint(n, "file_sightings_interval_seconds", 0, 86'400,
                        c.file_sightings_interval_seconds);
               }},
              {"reconnect_initial_ms",
               [&](const YAML::Node& n) {
                 r.Uint(n, "reconnect_initial_ms", 1, 60'000, c.reconnect_initial_ms);
               }},
              {"reconnect_max_ms",
               [&](const YAML::Node& n) {
                 r.Uint(n, "reconnect_max_ms", 1, 3'600'000, c.reconnect_max_ms);
               }},
              {"log_level",
               [&](const YAML::Node& n) {
                 r.String(n, "log_level", c.log_level);
                 static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
                 if (std::find(std::begin(kLevels), std::end(kLevels), c.log_level) ==
                     std::end(kLevels)) {
                   r.Problem(n, "log_level must be one of trace, debug, info, warn, error, off");
                 }
               }},
              {"isolation",
               [&](const YAML::Node& n) {
                 r.Map(n, "isolation.",
                       {
                           {"selective_allow",
                            [&](const YAML::Node& m) {
                              r.AllowRules(m, "isolation.selective_allow",
                                           c.isolation.selective_allow);
                            }},
                           {"watchdog_interval_seconds",
                            [&](const YAML::Node& m) {
                              r.Uint(m, "isolation.watchdog_interval_seconds", 1, 3600,
                                     c.isolation.watchdog_interval_seconds);
                            }},
                       });
               }},
              {"restriction",
               [&](const YAML::Node& n) {
                 r.Map(n, "restriction.",
                       {
                           {"allow_sha256",
                            [&](const YAML::Node& m) {
                              r.Strings(m, "restriction.allow_sha256", c.restriction.allow_sha256);
                              if (!m.IsSequence()) return;
                              for (const auto& item : m) {
                                const std::string h = item.IsScalar() ? item.Scalar() : "";
                                const bool hex = h.size() == 64 &&
                                    h.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
                                if (!hex && !h.empty()) {
                                  r.Problem(item, "restriction.allow_sha256: '" + h +
                                                      "' is not a SHA-256 (64 hex digits)");
                                }
                              }
                            }},
                           {"require_private_mount_namespace",
                            [&](const YAML::Node& m) {
                              if (!m.IsScalar() || (m.Scalar() != "true" && m.Scalar() != "false")) {
                                return r.Problem(
                                    m, "restriction.require_private_mount_namespace must be true or false");
                              }
                              c.restriction.require_private_mount_namespace = m.Scalar() == "true";
                            }},
                       });
               }},
              {"quarantine",
               [&](const YAML::Node& n) {
                 auto boolean = [&](const YAML::Node& m, const std::string& key, bool& out) {
                   if (!m.IsScalar() || (m.Scalar() != "true" && m.Scalar() != "false")) {
                     return r.Problem(m, key + " must be true or false");
                   }
                   out = m.Scalar() == "true";
                 };
                 auto absolute = [&](const YAML::Node& m, const std::string& key, std::string& out) {
                   r.String(m, key, out);
                   if (m.IsScalar() && !out.starts_with('/')) r.Problem(m, key + " must be an absolute path");
                 };
                 r.Map(n, "quarantine.",
                       {
                           {"root",
                            [&](const YAML::Node& m) { absolute(m, "quarantine.root", c.quarantine.root); }},
                           {"proc_root",
                            [&](const YAML::Node& m) {
                              absolute(m, "quarantine.proc_root", c.quarantine.proc_root);
                            }},
                           {"use_systemctl",
                            [&](const YAML::Node& m) {
                              boolean(m, "quarantine.use_systemctl", c.quarantine.use_systemctl);
                            }},
                           {"search_quick_scan_locations",
                            [&](const YAML::Node& m) {
                              boolean(m, "quarantine.search_quick_scan_locations",
                                      c.quarantine.search_quick_scan_locations);
                            }},
                           {"max_file_bytes",
                            [&](const YAML::Node& m) {
                              r.Uint64(m, "quarantine.max_file_bytes", 1, 1ull << 40,
                                       c.quarantine.max_file_bytes);
                            }},
                           {"watch_written_files",
                            [&](const YAML::Node& m) {
                              boolean(m, "quarantine.watch_written_files",
                                      c.quarantine.watch_written_files);
                            }},
                           {"written_file_max_bytes",
                            [&](const YAML::Node& m) {
                              r.Uint64(m, "quarantine.written_file_max_bytes", 1, 1ull << 40,
                                       c.quarantine.written_file_max_bytes);
                            }},
                       });
               }},
              {"collect",
               [&](const YAML::Node& n) {
                 r.Map(n, "collect.",
                       {
                           {"max_artifact_bytes",
                            [&](const YAML::Node& m) {
                              r.Uint64(m, "collect.max_artifact_bytes", 4096, 1ull << 40,
                                       c.collect.max_artifact_bytes);
                            }},
                           {"max_total_bytes",
                            [&](const YAML::Node& m) {
                              r.Uint64(m, "collect.max_total_bytes", 4096, 1ull << 40,
                                       c.collect.max_total_bytes);
                            }},
                           {"time_limit_seconds",
                            [&](const YAML::Node& m) {
                              r.Uint(m, "collect.time_limit_seconds", 10, 24 * 3600,
                                     c.collect.time_limit_seconds);
                            }},
                           {"command_timeout_seconds",
                            [&](const YAML::Node& m) {
                              r.Uint(m, "collect.command_timeout_seconds", 1, 3600,
                                     c.collect.command_timeout_seconds);
                            }},
                       });
               }},
              {"dns_filter",
               [&](const YAML::Node& n) {
                 r.Map(n, "dns_filter.",
                       {
                           {"enabled",
                            [&](const YAML::Node& m) {
                              if (!m.IsScalar() || (m.Scalar() != "true" && m.Scalar() != "false")) {
                                return r.Problem(m, "dns_filter.enabled must be true or false");
                              }
                              c.dns_filter.enabled = m.Scalar() == "true";
                            }},
                           {"port",
                            [&](const YAML::Node& m) {
                              r.Uint(m, "dns_filter.port", 0, 65535, c.dns_filter.port);
                            }},
                           {"upstream_timeout_ms",
                            [&](const YAML::Node& m) {
                              r.Uint(m, "dns_filter.upstream_timeout_ms", 100, 30'000,
                                     c.dns_filter.upstream_timeout_ms);
                            }},
                       });
               }},
              {"scan",
               [&](const YAML::Node& n) {
                 constexpr uint64_t kMaxBytes = 1ull << 40;
                 r.Map(n, "scan.",
                       {
                           {"clamav_database_dirs",
                            [&](const YAML::Node& m) {
                              scan_clam_dirs_seen = true;
                              r.Strings(m, "scan.clamav_database_dirs", c.scan.clamav_database_dirs);
                            }},
                           {"yara_rule_dirs",
                            [&](const YAML::Node& m) {
                              r.Strings(m, "scan.yara_rule_dirs", c.scan.yara_rule_dirs);
                            }},
                           {"threads",
                            [&](const YAML::Node& m) { r.Uint(m, "scan.threads", 0, 32, c.scan.threads); }},
                           {"cpu_limit_percent",
                            [&](const YAML::Node& m) {
                              r.Uint(m, "scan.cpu_limit_percent", 1, 100, c.scan.cpu_limit_percent);
                            }},
                           {"max_file_bytes",
                            [&](const YAML::Node& m) {
                              r.Uint64(m, "scan.max_file_bytes", 1, kMaxBytes, c.scan.max_file_bytes);
                            }},
                           {"archive_max_bytes",
                            [&](const YAML::Node& m) {
                              r.Uint64(m, "scan.archive_max_bytes", 1, kMaxBytes,
                                       c.scan.archive_max_bytes);
                            }},
                           {"archive_max_recursion",
                            [&](const YAML::Node& m) {
                              r.Uint(m, "scan.archive_max_recursion", 1, 64,
                                     c.scan.archive_max_recursion);
                            }},
                           {"full_scan_roots",
                            [&](const YAML::Node& m) {
                              r.Strings(m, "scan.full_scan_roots", c.scan.full_scan_roots);
                            }},
                           {"quick_scan_root",
                            [&](const YAML::Node& m) {
                              r.String(m, "scan.quick_scan_root", c.scan.quick_scan_root);
                            }},
                           {"quick_scan_processes",
                            [&](const YAML::Node& m) {
                              if (!m.IsScalar() || (m.Scalar() != "true" && m.Scalar() != "false")) {
                                return r.Problem(m, "scan.quick_scan_processes must be true or false");
                              }
                              c.scan.quick_scan_processes = m.Scalar() == "true";
                            }},
                           {"cache_path",
                            [&](const YAML::Node& m) {
                              r.String(m, "scan.cache_path", c.scan.cache_path);
                              scan_cache_seen = true;
                            }},
                       });
               }},
          });
  } catch (const YAML::Exception& e) {  // a malformed key node; YAML parsed, so rare
    load.problems.push_back({file_name, e.mark.is_null() ? 0 : e.mark.line + 1, e.msg});
    return load;
  }

  // Cross-field checks, after every key has been read.
  if (c.server.empty()) {
    if (!server_seen) r.Problem("server is required (\"host:port\" of quell-server)");
  } else if (Status s = SplitHostPort(c.server, c.server_host, c.server_port); !s.ok()) {
    r.Problem(server_node, "server: " + s.message());
  }
  if (c.ca_cert.empty()) r.Problem("ca_cert is required (path to the server's CA certificate)");
  if (!c.enrollment_token.empty() && !c.enrollment_token_file.empty()) {
    r.Problem("set enrollment_token or enrollment_token_file, not both");
  }
  if (c.server_name.empty()) r.Problem("server_name must not be empty");
  if (c.state_dir.empty()) r.Problem("state_dir must not be empty");
  if (!scan_clam_dirs_seen) c.scan.clamav_database_dirs = {"/var/lib/clamav", c.state_dir + "/signatures"};
  if (!scan_cache_seen) c.scan.cache_path = c.state_dir + "/scan-cache";
  if (c.reconnect_max_ms < c.reconnect_initial_ms) {
    r.Problem("reconnect_max_ms must not be less than reconnect_initial_ms");
  }
  return load;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status().WithContext("config");
  AgentConfigLoad load = ParseAgentConfig(*text, path);
  if (!load.ok()) return InvalidArgument(load.ProblemsText());
  return std::move(load.config);
}

}  // namespace quell::agent
