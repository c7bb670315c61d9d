// The `scan:` section of agent.yaml (parsed by agent/app/agent_config.cc).
#include <gtest/gtest.h>

#include "agent/app/agent_config.h"

namespace quell::agent {
namespace {

TEST(ScanConfigTest, DefaultsFollowTheStateDir) {
  auto load = ParseAgentConfig("server: q:8443\nca_cert: /ca.pem\nstate_dir: /srv/qa\n", "a.yaml");
  ASSERT_TRUE(load.ok()) << load.ProblemsText();
  const scan::ScanSettings& s = load.config.scan;
  EXPECT_EQ(s.clamav_database_dirs,
            (std::vector<std::string>{"/var/lib/clamav", "/srv/qa/signatures"}));
  EXPECT_EQ(s.yara_rule_dirs, (std::vector<std::string>{"/etc/quell/yara"}));
  EXPECT_EQ(s.threads, 0u);
  EXPECT_EQ(s.cpu_limit_percent, 50u);
  EXPECT_EQ(s.cache_path, "/srv/qa/scan-cache");
  EXPECT_TRUE(s.full_scan_roots.empty());
  EXPECT_EQ(s.quick_scan_root, "/");
}

TEST(ScanConfigTest, ReadsEveryKey) {
  auto load = ParseAgentConfig(R"(server: q:8443
ca_cert: /ca.pem
scan:
  clamav_database_dirs: [/db1, /db2]
  yara_rule_dirs: [/rules]
  threads: 3
  cpu_limit_percent: 25
  max_file_bytes: 1048576
  archive_max_bytes: 2097152
  archive_max_recursion: 4
  full_scan_roots: [/lab/host]
  quick_scan_root: /lab/host
  quick_scan_processes: false
  cache_path: /lab/cache
)",
                               "a.yaml");
  ASSERT_TRUE(load.ok()) << load.ProblemsText();
  const scan::ScanSettings& s = load.config.scan;
  EXPECT_EQ(s.clamav_database_dirs, (std::vector<std::string>{"/db1", "/db2"}));
  EXPECT_EQ(s.yara_rule_dirs, (std::vector<std::string>{"/rules"}));
  EXPECT_EQ(s.threads, 3u);
  EXPECT_EQ(s.cpu_limit_percent, 25u);
  EXPECT_EQ(s.max_file_bytes, 1048576u);
  EXPECT_EQ(s.archive_max_bytes, 2097152u);
  EXPECT_EQ(s.archive_max_recursion, 4u);
  EXPECT_EQ(s.full_scan_roots, (std::vector<std::string>{"/lab/host"}));
  EXPECT_EQ(s.quick_scan_root, "/lab/host");
  EXPECT_FALSE(s.quick_scan_processes);
  EXPECT_EQ(s.cache_path, "/lab/cache");
}

TEST(ScanConfigTest, BadValuesPointAtTheirLines) {
  auto load = ParseAgentConfig("server: q:8443\nca_cert: /ca.pem\nscan:\n  cpu_limit_percent: 0\n"
                               "  yara_rule_dirs: /not-a-list\n  bogus: 1\n",
                               "a.yaml");
  ASSERT_FALSE(load.ok());
  const std::string text = load.ProblemsText();
  EXPECT_NE(text.find("a.yaml:4: scan.cpu_limit_percent must be 1..100"), std::string::npos) << text;
  EXPECT_NE(text.find("a.yaml:5: scan.yara_rule_dirs must be a list of strings"), std::string::npos)
      << text;
  EXPECT_NE(text.find("a.yaml:6: unknown key scan.bogus"), std::string::npos) << text;
}

}  // namespace
}  // namespace quell::agent
