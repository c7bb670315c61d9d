#include "agent/app/agent_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/testing/temp_dir.h"

namespace quell::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Problems(const AgentConfigLoad& load) {
  std::vector<std::string> out;
  for (const auto& p : load.problems) out.push_back(p.ToString());
  return out;
}

TEST(AgentConfigTest, MinimalFileGetsDocumentedDefaults) {
  auto load = ParseAgentConfig("server: quell.example.org:8443\nca_cert: /etc/quell/ca.pem\n",
                               "agent.yaml");
  ASSERT_TRUE(load.ok()) << load.ProblemsText();
  const AgentConfig& c = load.config;
  EXPECT_EQ(c.server_host, "quell.example.org");
  EXPECT_EQ(c.server_port, 8443);
  EXPECT_EQ(c.server_name, "quell-server");
  EXPECT_EQ(c.state_dir, "/var/lib/quell-agent");
  EXPECT_EQ(c.heartbeat_interval_seconds, 30u);
  EXPECT_EQ(c.reconnect_initial_ms, 500u);
  EXPECT_EQ(c.reconnect_max_ms, 30000u);
  EXPECT_EQ(c.isolation.watchdog_interval_seconds, 2u);
  EXPECT_TRUE(c.isolation.selective_allow.empty());
  EXPECT_EQ(c.log_level, "info");
}

TEST(AgentConfigTest, ReadsEveryKey) {
  auto load = ParseAgentConfig(R"(server: "[fd00::1]:9443"
server_name: gw.lab
ca_cert: /ca.pem
enrollment_token_file: /run/token
state_dir: /tmp/state
computer_name: victim-1
heartbeat_interval_seconds: 5
reconnect_initial_ms: 100
reconnect_max_ms: 2000
log_level: debug
isolation:
  selective_allow: ["10.0.0.0/8:53/udp", "fd00::/64"]
  watchdog_interval_seconds: 1
)",
                               "agent.yaml");
  ASSERT_TRUE(load.ok()) << load.ProblemsText();
  const AgentConfig& c = load.config;
  EXPECT_EQ(c.server_host, "fd00::1");
  EXPECT_EQ(c.server_port, 9443);
  EXPECT_EQ(c.server_name, "gw.lab");
  EXPECT_EQ(c.enrollment_token_file, "/run/token");
  EXPECT_EQ(c.computer_name, "victim-1");
  EXPECT_EQ(c.heartbeat_interval_seconds, 5u);
  EXPECT_EQ(c.reconnect_max_ms, 2000u);
  ASSERT_EQ(c.isolation.selective_allow.size(), 2u);
  EXPECT_TRUE(c.isolation.selective_allow[0] == *ParseAllowRule("10.0.0.0/8:53/udp"));
  EXPECT_EQ(c.isolation.selective_allow[0].port, 53);
  EXPECT_TRUE(c.isolation.selective_allow[1].IsIpv6());
  EXPECT_EQ(c.isolation.watchdog_interval_seconds, 1u);
}

TEST(AgentConfigTest, ReportsEveryProblemWithItsLine) {
  auto load = ParseAgentConfig(R"(server: quell:99999
ca_cert: /ca.pem
heartbeat_interval_seconds: 0
colour: blue
isolation:
  watchdog_interval_seconds: often
  selective_allow: 10.0.0.0/8
log_level: loud
)",
                               "agent.yaml");
  EXPECT_THAT(Problems(load),
              ElementsAre("agent.yaml:3: heartbeat_interval_seconds must be 1..3600",
                          "agent.yaml:4: unknown key colour",
                          "agent.yaml:6: isolation.watchdog_interval_seconds must be 1..3600",
                          "agent.yaml:7: isolation.selective_allow must be a list of strings",
                          "agent.yaml:8: log_level must be one of trace, debug, info, warn, "
                          "error, off",
                          "agent.yaml:1: server: expected \"host:port\" with a port in 1..65535"));
}

TEST(AgentConfigTest, BadAllowRulePointsAtItsOwnLine) {
  auto load = ParseAgentConfig(R"(server: s:1
ca_cert: /c
isolation:
  selective_allow:
    - 10.0.0.0/8:53
    - 10.0.0.0/99
)",
                               "agent.yaml");
  ASSERT_EQ(load.problems.size(), 1u);
  EXPECT_THAT(load.problems[0].ToString(),
              ::testing::StartsWith("agent.yaml:6: isolation.selective_allow: "));
}

TEST(AgentConfigTest, MissingRequiredKeysAndConflictingTokens) {
  auto load = ParseAgentConfig("enrollment_token: abc\nenrollment_token_file: /t\n", "a.yaml");
  EXPECT_THAT(Problems(load),
              ElementsAre(HasSubstr("a.yaml: server is required"),
                          HasSubstr("a.yaml: ca_cert is required"),
                          "a.yaml: set enrollment_token or enrollment_token_file, not both"));
}

TEST(AgentConfigTest, ReconnectMaxBelowInitialIsRefused) {
  auto load = ParseAgentConfig(
      "server: s:1\nca_cert: c\nreconnect_initial_ms: 5000\nreconnect_max_ms: 1000\n", "a.yaml");
  EXPECT_THAT(Problems(load),
              ElementsAre("a.yaml: reconnect_max_ms must not be less than reconnect_initial_ms"));
}

TEST(AgentConfigTest, MalformedYamlPointsAtTheLine) {
  auto load = ParseAgentConfig("server: s:1\nca_cert: [unclosed\n", "a.yaml");
  ASSERT_EQ(load.problems.size(), 1u);
  EXPECT_THAT(load.problems[0].ToString(), HasSubstr("a.yaml:"));
  EXPECT_GT(load.problems[0].line, 0);
}

TEST(AgentConfigTest, LoadFromFileNamesTheFileInErrors) {
  quell::testing::TempDir dir;
  std::ofstream(dir / "agent.yaml") << "server: s:1\nca_cert: /c\nbogus: 1\n";
  auto config = LoadAgentConfig(dir / "agent.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), dir / "agent.yaml" + ":3: unknown key bogus");
  EXPECT_EQ(LoadAgentConfig(dir / "missing.yaml").status().code(), StatusCode::kNotFound);
}

TEST(AgentConfigTest, CollectLimitsAreReadAndChecked) {
  AgentConfigLoad ok = ParseAgentConfig(
      "server: s:1\nca_cert: /c\ncollect:\n  max_total_bytes: 1048576\n  time_limit_seconds: 30\n",
      "agent.yaml");
  ASSERT_TRUE(ok.ok()) << ok.ProblemsText();
  EXPECT_EQ(ok.config.collect.max_total_bytes, 1048576u);
  EXPECT_EQ(ok.config.collect.time_limit_seconds, 30u);
  AgentConfigLoad bad = ParseAgentConfig(
      "server: s:1\nca_cert: /c\ncollect:\n  time_limit_seconds: 1\n  bogus: 2\n", "agent.yaml");
  EXPECT_NE(bad.ProblemsText().find("agent.yaml:4: collect.time_limit_seconds must be"),
            std::string::npos)
      << bad.ProblemsText();
  EXPECT_NE(bad.ProblemsText().find("collect.bogus"), std::string::npos) << bad.ProblemsText();
}

TEST(AgentConfigTest, ShippedExampleLoadsAndDocumentsTheDefaults) {
  auto config = LoadAgentConfig(QUELL_SOURCE_DIR "/packaging/agent.example.yaml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  AgentConfig defaults;
  EXPECT_EQ(config->server_name, defaults.server_name);
  EXPECT_EQ(config->state_dir, defaults.state_dir);
  EXPECT_EQ(config->computer_name, defaults.computer_name);
  EXPECT_EQ(config->heartbeat_interval_seconds, defaults.heartbeat_interval_seconds);
  EXPECT_EQ(config->file_sightings_interval_seconds, defaults.file_sightings_interval_seconds);
  EXPECT_EQ(config->reconnect_initial_ms, defaults.reconnect_initial_ms);
  EXPECT_EQ(config->reconnect_max_ms, defaults.reconnect_max_ms);
  EXPECT_EQ(config->isolation.watchdog_interval_seconds,
            defaults.isolation.watchdog_interval_seconds);
  EXPECT_EQ(config->log_level, defaults.log_level);
  EXPECT_EQ(config->quarantine.root, defaults.quarantine.root);
  EXPECT_EQ(config->quarantine.proc_root, defaults.quarantine.proc_root);
  EXPECT_EQ(config->quarantine.use_systemctl, defaults.quarantine.use_systemctl);
  EXPECT_EQ(config->quarantine.search_quick_scan_locations,
            defaults.quarantine.search_quick_scan_locations);
  EXPECT_EQ(config->quarantine.max_file_bytes, defaults.quarantine.max_file_bytes);
  EXPECT_EQ(config->quarantine.watch_written_files, defaults.quarantine.watch_written_files);
  EXPECT_EQ(config->quarantine.written_file_max_bytes, defaults.quarantine.written_file_max_bytes);
  EXPECT_EQ(config->collect.max_artifact_bytes, defaults.collect.max_artifact_bytes);
  EXPECT_EQ(config->collect.max_total_bytes, defaults.collect.max_total_bytes);
  EXPECT_EQ(config->collect.time_limit_seconds, defaults.collect.time_limit_seconds);
  EXPECT_EQ(config->collect.command_timeout_seconds, defaults.collect.command_timeout_seconds);
  EXPECT_EQ(config->scan.clamav_database_dirs,
            (std::vector<std::string>{"/var/lib/clamav", defaults.state_dir + "/signatures"}));
  EXPECT_EQ(config->scan.yara_rule_dirs, defaults.scan.yara_rule_dirs);
  EXPECT_EQ(config->scan.threads, defaults.scan.threads);
  EXPECT_EQ(config->scan.cpu_limit_percent, defaults.scan.cpu_limit_percent);
  EXPECT_EQ(config->scan.max_file_bytes, defaults.scan.max_file_bytes);
  EXPECT_EQ(config->scan.archive_max_bytes, defaults.scan.archive_max_bytes);
  EXPECT_EQ(config->scan.archive_max_recursion, defaults.scan.archive_max_recursion);
  EXPECT_EQ(config->scan.full_scan_roots, defaults.scan.full_scan_roots);
  EXPECT_EQ(config->scan.quick_scan_root, defaults.scan.quick_scan_root);
  EXPECT_EQ(config->scan.quick_scan_processes, defaults.scan.quick_scan_processes);
  EXPECT_EQ(config->scan.cache_path, defaults.state_dir + "/scan-cache");
  EXPECT_EQ(config->dns_filter.enabled, defaults.dns_filter.enabled);
  EXPECT_EQ(config->dns_filter.port, defaults.dns_filter.port);
  EXPECT_EQ(config->dns_filter.upstream_timeout_ms, defaults.dns_filter.upstream_timeout_ms);
}

TEST(AgentConfigTest, DnsFilterSection) {
  auto load = ParseAgentConfig("server: s:1\nca_cert: /ca.pem\ndns_filter:\n  enabled: false\n"
                               "  port: 5354\n  upstream_timeout_ms: 700\n",
                               "agent.yaml");
  ASSERT_TRUE(load.ok()) << load.ProblemsText();
  EXPECT_FALSE(load.config.dns_filter.enabled);
  EXPECT_EQ(load.config.dns_filter.port, 5354u);
  EXPECT_EQ(load.config.dns_filter.upstream_timeout_ms, 700u);
  auto bad = ParseAgentConfig("server: s:1\nca_cert: /ca.pem\ndns_filter:\n  enabled: yes\n"
                              "  port: 70000\n  upstream_timeout_ms: 5\n  bogus: 1\n",
                              "agent.yaml");
  EXPECT_EQ(bad.ProblemsText(),
            "agent.yaml:4: dns_filter.enabled must be true or false\n"
            "agent.yaml:5: dns_filter.port must be 0..65535\n"
            "agent.yaml:6: dns_filter.upstream_timeout_ms must be 100..30000\n"
            "agent.yaml:7: unknown key dns_filter.bogus");
}

TEST(AgentConfigTest, QuarantineSection) {
  auto load = ParseAgentConfig(R"(server: s:1
ca_cert: /ca.pem
quarantine:
  root: /srv/lab
  use_systemctl: false
  search_quick_scan_locations: false
  max_file_bytes: 1024
  watch_written_files: false
  written_file_max_bytes: 4096
)",
                               "agent.yaml");
  ASSERT_TRUE(load.ok()) << load.ProblemsText();
  EXPECT_EQ(load.config.quarantine.root, "/srv/lab");
  EXPECT_EQ(load.config.quarantine.proc_root, "/proc");
  EXPECT_FALSE(load.config.quarantine.use_systemctl);
  EXPECT_FALSE(load.config.quarantine.search_quick_scan_locations);
  EXPECT_EQ(load.config.quarantine.max_file_bytes, 1024u);
  EXPECT_FALSE(load.config.quarantine.watch_written_files);
  EXPECT_EQ(load.config.quarantine.written_file_max_bytes, 4096u);

  auto bad = ParseAgentConfig(R"(server: s:1
ca_cert: /ca.pem
quarantine:
  root: relative
  use_systemctl: maybe
  vault: x
)",
                              "agent.yaml");
  EXPECT_EQ(bad.ProblemsText(),
            "agent.yaml:4: quarantine.root must be an absolute path\n"
            "agent.yaml:5: quarantine.use_systemctl must be true or false\n"
            "agent.yaml:6: unknown key quarantine.vault");
}

TEST(AgentConfigTest, SplitHostPort) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(SplitHostPort("127.0.0.1:443", host, port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 443);
  EXPECT_FALSE(SplitHostPort("::1:443", host, port).ok());  // IPv6 needs brackets
  EXPECT_FALSE(SplitHostPort("host", host, port).ok());
  EXPECT_FALSE(SplitHostPort(":80", host, port).ok());
  EXPECT_FALSE(SplitHostPort("h:0", host, port).ok());
  EXPECT_FALSE(SplitHostPort("h:8x", host, port).ok());
}

}  // namespace
}  // namespace quell::agent
