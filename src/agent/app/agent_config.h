// quell-agent's configuration: one typed struct loaded from YAML. Every option and its default
// is documented in packaging/agent.example.yaml; keep the two in step.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/isolation/isolation_policy.h"
#include "agent/scan/scan_settings.h"
#include "common/status.h"

namespace quell::agent {

struct AgentConfig {
  // "host:port" (IPv6 as "[::1]:8443") of quell-server's agent gateway. Required.
  std::string server;
  std::string server_host;   // derived from `server`
  uint16_t server_port = 0;  // derived from `server`
  // The name the server certificate must carry (checked instead of the host in `server`).
  std::string server_name = "quell-server";
  // Path to the PEM of the server's CA: the pin. The agent trusts no other certificate.
  std::string ca_cert;
  // One-time enrollment token, inline or in a file; needed only until the agent has enrolled.
  std::string enrollment_token;
  std::string enrollment_token_file;
  std::string state_dir = "/var/lib/quell-agent";
  std::string computer_name;  // empty: the host name (gethostname)
  uint32_t heartbeat_interval_seconds = 30;
  // Seconds between looks at the executables of running processes, whose hashes are reported
  // to the server (where a file lives, for fleet-wide actions); 0 turns the reports off.
  uint32_t file_sightings_interval_seconds = 60;
  uint32_t reconnect_initial_ms = 500;
  uint32_t reconnect_max_ms = 30'000;
  struct Isolation {
    // Destinations still reachable under Selective isolation; in YAML, strings in
    // ParseAllowRule's form, e.g. "10.0.0.0/8:53/udp", "[fd77::1]:22".
    std::vector<AllowRule> selective_allow;
    uint32_t watchdog_interval_seconds = 2;
  } isolation;
  // Antivirus scan (RunAntiVirusScan); see scan_settings.h for each option and its default.
  // Unset clamav_database_dirs becomes {"/var/lib/clamav", "<state_dir>/signatures"} and
  // cache_path "<state_dir>/scan-cache".
  scan::ScanSettings scan;
  // Execution restriction (RestrictCodeExecution); see docs/operations.md.
  struct Restriction {
    // SHA-256 digests (64 hex digits) of programs allowed besides unmodified package files.
    std::vector<std::string> allow_sha256;
    // Refuse to restrict while the agent shares PID 1's mount namespace. Default false; the
    // lab sets it true so a lab agent can never restrict the machine running the tests.
    bool require_private_mount_namespace = false;
  } restriction;
  // Stop and quarantine file (StopAndQuarantineFile / RestoreQuarantinedFile); see
  // docs/operations.md "Quarantine". The vault and its journal live in <state_dir>/quarantine.
  struct Quarantine {
    // Files and persistence locations (cron, systemd, profiles, ...) are looked up under this
    // root: "/" on a real host.
    std::string root = "/";
    std::string proc_root = "/proc";  // where running processes are read
    // Whether systemctl is called (stop/disable/daemon-reload, start on restore). false in
    // labs: there systemctl would talk to the real machine's systemd.
    bool use_systemctl = true;
    // Also look for the hash in the quick-scan locations (temp dirs, homes, persistence).
    bool search_quick_scan_locations = true;
    uint64_t max_file_bytes = 1ull << 30;  // larger candidate files are not hashed
    // While a BlockAndRemediate file-hash indicator exists, files closed after writing on the
    // agent's own mounts are hashed and remediated at once (fanotify FAN_CLOSE_WRITE).
    bool watch_written_files = true;
    uint64_t written_file_max_bytes = 256ull << 20;  // larger written files are not hashed
  } quarantine;
  // The DNS filter that enforces DomainName/Url indicators; see docs/operations.md "DNS
  // filter". It runs (and the host's DNS is steered to it) only while such an indicator with
  // Audit/Block/BlockAndRemediate exists.
  struct DnsFilter {
    bool enabled = true;
    // Its port on 127.0.0.1 and ::1; 0 = an ephemeral port chosen when it starts.
    uint32_t port = 0;
    // Per nameserver and transport, when forwarding to the resolvers of /etc/resolv.conf.
    uint32_t upstream_timeout_ms = 2000;
  } dns_filter;
  // Investigation packages (CollectInvestigationPackage); see docs/operations.md
  // "Investigation package". Staged in <state_dir>/collect and removed once uploaded.
  struct Collect {
    uint64_t max_artifact_bytes = 32ull << 20;   // each file in the package is cut here
    uint64_t max_total_bytes = 256ull << 20;     // collection stops here
    uint32_t time_limit_seconds = 600;           // ... or after this long
    uint32_t command_timeout_seconds = 60;       // each command (ip, nft, journalctl) at most
  } collect;
  std::string log_level = "info";
};

// One thing wrong with a config file, located as precisely as the YAML allows.
struct ConfigProblem {
  std::string file;
  int line = 0;  // 1-based; 0 when the problem has no line (a missing key)
  std::string message;
  std::string ToString() const;  // "agent.yaml:7: heartbeat_interval_seconds must be 1..3600"
};

struct AgentConfigLoad {
  AgentConfig config;
  std::vector<ConfigProblem> problems;  // every problem: per key in file order, then cross-key
  bool ok() const { return problems.empty(); }
  std::string ProblemsText() const;  // one problem per line
};

// Parses YAML text; `file_name` only labels the problems. Pure: touches no file.
AgentConfigLoad ParseAgentConfig(std::string_view yaml, const std::string& file_name);

// Reads and parses `path`. InvalidArgument listing every problem, one per line.
Result<AgentConfig> LoadAgentConfig(const std::string& path);

// Splits "host:port" / "[v6]:port". InvalidArgument if malformed.
Status SplitHostPort(std::string_view text, std::string& host, uint16_t& port);

}  // namespace quell::agent
