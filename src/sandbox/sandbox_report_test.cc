#include "sandbox/sandbox_report.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace quell::sandbox {
namespace {

using nlohmann::json;

SampleInfo Sample() {
  return {.file_name = "sample.sh",
          .size = 42,
          .sha256 = "aa",
          .sha1 = "bb",
          .md5 = "cc",
          .kind = "shell"};
}

// The sample process: /bin/sh running the script.
Observations PlainScript() {
  Observations o;
  ProcessRecord p;
  p.pid = 100;
  p.executable = "/bin/sh";
  p.argv = {"/bin/sh", "/analysis/sample.sh"};
  p.exit_code = 0;
  o.trace.processes.push_back(p);
  o.outcome.exit_code = 0;
  o.outcome.startup_ms = 80;
  o.outcome.duration_ms = 15;
  return o;
}

bool HasBehavior(const json& report, std::string_view category, std::string_view needle) {
  for (const json& b : report["behaviors"]) {
    if (b["category"] == category &&
        b["description"].get<std::string>().find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

bool HasReason(const json& report, std::string_view needle) {
  for (const json& r : report["verdictReasons"]) {
    if (r.get<std::string>().find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(SandboxReportTest, PlainScriptHasNoThreats) {
  json r = BuildSandboxReport(Sample(), PlainScript());
  EXPECT_EQ(r["verdict"], "noThreatsFound");
  ASSERT_EQ(r["verdictReasons"].size(), 1u);
  EXPECT_EQ(r["sample"]["fileName"], "sample.sh");
  EXPECT_EQ(r["sample"]["sha256"], "aa");
  EXPECT_EQ(r["sample"]["kind"], "shell");
  EXPECT_EQ(r["processes"][0]["executable"], "/bin/sh");
  EXPECT_EQ(r["processes"][0]["exitCode"], 0);
  EXPECT_TRUE(r["processes"][0]["killedBy"].is_null());
  EXPECT_TRUE(HasBehavior(r, "execution", "started /bin/sh: /bin/sh /analysis/sample.sh"));
  EXPECT_EQ(r["limits"]["timedOut"], false);
  EXPECT_EQ(r["startupMs"], 80);
  EXPECT_EQ(r["durationMs"], 15);
  EXPECT_EQ(r["truncated"], false);
  EXPECT_TRUE(r["observables"]["domains"].empty());
  EXPECT_TRUE(r["observables"]["ips"].empty());
}

TEST(SandboxReportTest, CronJobAttemptIsMaliciousEvenWhenRefused) {
  Observations o = PlainScript();
  o.trace.files.push_back({.pid = 100,
                           .at_ms = 5,
                           .operation = FileOperation::kCreate,
                           .path = "/etc/cron.d/backdoor",
                           .mode = 0644,
                           .result = -EROFS});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "malicious");
  EXPECT_TRUE(HasReason(r, "cron job /etc/cron.d/backdoor"));
  EXPECT_TRUE(HasReason(r, "EROFS"));
  EXPECT_TRUE(HasBehavior(r, "persistence", "tried to write a cron job"));
}

TEST(SandboxReportTest, EachPersistenceKindAndRenameIntoPlace) {
  Observations o = PlainScript();
  o.trace.files.push_back(
      {.pid = 100, .at_ms = 1, .operation = FileOperation::kWrite, .path = "/etc/ld.so.preload"});
  o.trace.files.push_back({.pid = 100,
                           .at_ms = 2,
                           .operation = FileOperation::kRename,
                           .path = "/tmp/x",
                           .new_path = "/root/.ssh/authorized_keys"});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "malicious");
  EXPECT_TRUE(HasReason(r, "preload"));
  EXPECT_TRUE(HasReason(r, "moved into place SSH authorized keys /root/.ssh/authorized_keys"));
}

TEST(SandboxReportTest, DroppedAndExecutedBinaryIsSuspicious) {
  Observations o = PlainScript();
  o.trace.files.push_back({.pid = 100,
                           .at_ms = 3,
                           .operation = FileOperation::kCreate,
                           .path = "/tmp/payload",
                           .mode = 0600});
  o.trace.files.push_back({.pid = 100,
                           .at_ms = 4,
                           .operation = FileOperation::kChmod,
                           .path = "/tmp/payload",
                           .mode = 0755});
  ProcessRecord child;
  child.pid = 101;
  child.parent_pid = 100;
  child.started_ms = 5;
  child.executable = "/tmp/payload";
  child.argv = {"/tmp/payload", "--run"};
  o.trace.processes.push_back(child);
  ProcessRecord chmod;  // names the file but does not run it
  chmod.pid = 102;
  chmod.parent_pid = 100;
  chmod.started_ms = 4;
  chmod.executable = "/usr/bin/chmod";
  chmod.argv = {"chmod", "+x", "/tmp/payload"};
  o.trace.processes.push_back(chmod);
  o.dropped_files.push_back(
      {.path = "/tmp/payload", .size = 10, .sha256 = "dd", .executable = true});
  // The sample's own copy in the work dir, listed by the supervisor's walk: not "dropped".
  o.dropped_files.push_back(
      {.path = "/analysis/sample.sh", .size = 42, .sha256 = "aa", .executable = true});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "suspicious");
  EXPECT_TRUE(HasReason(r, "executed a file it dropped: /tmp/payload"));
  EXPECT_FALSE(HasReason(r, "sample.sh"));
  ASSERT_EQ(r["verdictReasons"].size(), 1u);  // chmod naming the file is not an execution
  int executions = 0;
  for (const json& b : r["behaviors"]) {
    if (b["description"].get<std::string>().starts_with("executed a file it dropped")) {
      ++executions;
      EXPECT_EQ(b["pid"], 101);
      EXPECT_EQ(b["details"]["sha256"], "dd");
    }
  }
  EXPECT_EQ(executions, 1);
  EXPECT_TRUE(HasBehavior(r, "fileSystem", "made /tmp/payload executable (mode 0755)"));
  ASSERT_EQ(r["observables"]["droppedFiles"].size(), 2u);
  EXPECT_EQ(r["observables"]["droppedFiles"][0]["sha256"], "dd");
  EXPECT_EQ(r["observables"]["droppedFiles"][0]["executable"], true);
}

TEST(SandboxReportTest, ScriptRunThroughInterpreterCountsAsDroppedExecution) {
  Observations o = PlainScript();
  o.trace.files.push_back(
      {.pid = 100, .at_ms = 3, .operation = FileOperation::kWrite, .path = "/tmp/stage2.sh"});
  ProcessRecord child;
  child.pid = 101;
  child.parent_pid = 100;
  child.executable = "/bin/sh";
  child.argv = {"sh", "/tmp/stage2.sh"};
  o.trace.processes.push_back(child);
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "suspicious");
  EXPECT_TRUE(HasReason(r, "/tmp/stage2.sh"));
}

TEST(SandboxReportTest, DnsAndSinkholeConnectionAttributedToDomain) {
  Observations o = PlainScript();
  o.network.dns.push_back(
      {.at_ms = 6, .name = "evil.example", .type = "A", .answer = "198.18.0.1"});
  o.network.dns.push_back({.at_ms = 6, .name = "evil.example", .type = "AAAA", .answer = ""});
  o.network.dns.push_back({.at_ms = 6, .name = "localhost", .type = "A", .answer = "198.18.0.2"});
  // The resolver traffic itself is DNS transport, not a connection.
  o.trace.connections.push_back({.pid = 100,
                                 .at_ms = 6,
                                 .family = "inet",
                                 .address = "10.53.53.53",
                                 .port = 53,
                                 .protocol = "udp"});
  o.trace.connections.push_back({.pid = 100,
                                 .at_ms = 7,
                                 .family = "inet",
                                 .address = "198.18.0.1",
                                 .port = 443,
                                 .protocol = "tcp",
                                 .result = -EINPROGRESS});
  o.network.tcp.push_back({.at_ms = 8,
                           .address = "198.18.0.1",
                           .port = 443,
                           .first_bytes = std::string("GET /\r\n\x01\xff\\", 10),
                           .bytes_received = 10});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "suspicious");
  EXPECT_EQ(r["observables"]["domains"], json::array({"evil.example"}));
  EXPECT_TRUE(r["observables"]["ips"].empty());  // a sinkhole is not a contacted IP
  ASSERT_EQ(r["observables"]["connections"].size(), 1u);
  const json& c = r["observables"]["connections"][0];
  EXPECT_EQ(c["address"], "198.18.0.1");
  EXPECT_EQ(c["port"], 443);
  EXPECT_EQ(c["protocol"], "tcp");
  EXPECT_EQ(c["domain"], "evil.example");
  EXPECT_EQ(c["firstBytes"], "GET /\\r\\n\\x01\\xff\\\\");
  EXPECT_EQ(c["firstBytesHex"], "474554202f0d0a01ff5c");
  EXPECT_TRUE(HasReason(r, "looked up evil.example (A, AAAA)"));
  EXPECT_TRUE(HasReason(r, "connected out to evil.example (198.18.0.1) port 443/tcp"));
  EXPECT_FALSE(HasReason(r, "EINPROGRESS"));
  EXPECT_FALSE(HasReason(r, "localhost"));
}

TEST(SandboxReportTest, DirectIpConnectionListsIpAndUnseenSessionsStillCount) {
  Observations o = PlainScript();
  o.trace.connections.push_back({.pid = 100,
                                 .at_ms = 7,
                                 .family = "inet6",
                                 .address = "::ffff:203.0.113.7",
                                 .port = 4444,
                                 .protocol = "tcp",
                                 .result = -ECONNREFUSED});
  o.network.tcp.push_back({.at_ms = 8, .address = "192.0.2.9", .port = 80, .first_bytes = "hi"});
  o.trace.connections.push_back(
      {.pid = 100, .at_ms = 9, .family = "unix", .address = "/run/dbus/system_bus_socket"});
  o.trace.connections.push_back(
      {.pid = 100, .at_ms = 10, .family = "unix", .address = "/run/dbus/system_bus_socket"});
  o.trace.connections.push_back({.pid = 100,
                                 .at_ms = 9,
                                 .family = "inet",
                                 .address = "127.0.0.1",
                                 .port = 8080,
                                 .protocol = "tcp"});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "suspicious");
  EXPECT_EQ(r["observables"]["ips"], json::array({"203.0.113.7", "192.0.2.9"}));
  EXPECT_TRUE(HasReason(r, "203.0.113.7 port 4444/tcp (failed: ECONNREFUSED)"));
  EXPECT_TRUE(HasReason(r, "192.0.2.9 port 80/tcp, sending \"hi\""));
  EXPECT_FALSE(HasReason(r, "127.0.0.1"));
  EXPECT_TRUE(HasBehavior(r, "network", "unix socket /run/dbus/system_bus_socket"));
  int unix_behaviors = 0;
  for (const json& b : r["behaviors"]) {
    unix_behaviors += b["description"].get<std::string>().find("unix socket") != std::string::npos;
  }
  EXPECT_EQ(unix_behaviors, 1);  // once per socket path
}

TEST(SandboxReportTest, KernelModuleAndPtraceOfOthersAreMalicious) {
  Observations o = PlainScript();
  o.trace.privileged_calls.push_back(
      {.pid = 100, .at_ms = 3, .call = "finit_module", .detail = "/tmp/rk.ko", .result = -EPERM});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "malicious");
  EXPECT_TRUE(HasReason(r, "kernel code: finit_module (/tmp/rk.ko) (refused: EPERM)"));

  Observations p = PlainScript();
  p.trace.privileged_calls.push_back(
      {.pid = 100, .call = "ptrace", .detail = "PTRACE_ATTACH pid 7", .result = -EPERM});
  json rp = BuildSandboxReport(Sample(), p);
  EXPECT_EQ(rp["verdict"], "malicious");
  EXPECT_TRUE(HasBehavior(rp, "processInjection", "PTRACE_ATTACH"));
}

TEST(SandboxReportTest, OtherPrivilegedCallsTraceMeAndIdentityAreSuspicious) {
  Observations o = PlainScript();
  o.trace.privileged_calls.push_back(
      {.pid = 100, .call = "mount", .detail = "target=/mnt", .result = -EPERM});
  o.trace.privileged_calls.push_back({.pid = 100, .call = "ptrace", .detail = "PTRACE_TRACEME"});
  o.trace.identity_changes.push_back({.pid = 100, .call = "setuid", .ids = {1000}, .result = 0});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "suspicious");
  EXPECT_TRUE(HasReason(r, "privileged call: mount (target=/mnt) (refused: EPERM)"));
  EXPECT_TRUE(HasReason(r, "changed identity: setuid(1000)"));
  EXPECT_TRUE(HasBehavior(r, "evasion", "debugger"));
}

TEST(SandboxReportTest, SelfDeletionIsEvasionAndOrdinaryDeletionIsNot) {
  Observations o = PlainScript();
  o.trace.files.push_back(
      {.pid = 100, .operation = FileOperation::kDelete, .path = "/tmp/scratch"});
  json plain = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(plain["verdict"], "noThreatsFound");
  EXPECT_TRUE(HasBehavior(plain, "fileSystem", "deleted /tmp/scratch"));

  o.trace.files.push_back(
      {.pid = 100, .operation = FileOperation::kDelete, .path = "/analysis/sample.sh"});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "suspicious");
  EXPECT_TRUE(HasReason(r, "deleted its own file /analysis/sample.sh"));
}

TEST(SandboxReportTest, SignalsToOwnChildrenAreNotAVerdictButInitIs) {
  Observations o = PlainScript();
  o.trace.signals.push_back({.pid = 100, .target = 5, .signal = 9});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "noThreatsFound");
  EXPECT_TRUE(HasBehavior(r, "process", "sent SIGKILL to process 5"));

  o.trace.signals.push_back({.pid = 100, .target = -1, .signal = 15});
  json all = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(all["verdict"], "suspicious");
  EXPECT_TRUE(HasReason(all, "SIGTERM to every process"));
}

TEST(SandboxReportTest, LimitsAreResourceAbuse) {
  Observations o = PlainScript();
  o.outcome.pids_limit_hit = true;
  o.outcome.memory_limit_hit = true;
  o.outcome.timed_out = true;
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "suspicious");
  EXPECT_TRUE(HasReason(r, "fork bomb"));
  EXPECT_TRUE(HasReason(r, "memory limit"));
  EXPECT_TRUE(HasReason(r, "wall-clock limit"));
  EXPECT_EQ(r["limits"]["pidsLimitHit"], true);
  EXPECT_EQ(r["limits"]["memoryLimitHit"], true);
  EXPECT_EQ(r["limits"]["timedOut"], true);
}

TEST(SandboxReportTest, MaliciousReasonsListOnlyTheWorstLevel) {
  Observations o = PlainScript();
  o.trace.identity_changes.push_back({.pid = 100, .call = "setuid", .ids = {0}});
  o.trace.files.push_back({.pid = 100, .operation = FileOperation::kWrite, .path = "/etc/crontab"});
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_EQ(r["verdict"], "malicious");
  EXPECT_TRUE(HasReason(r, "/etc/crontab"));
  EXPECT_FALSE(HasReason(r, "setuid"));
  EXPECT_TRUE(HasBehavior(r, "privilege", "setuid(0)"));  // still a behaviour
}

TEST(SandboxReportTest, ManyMinorBehavioursAreSummarised) {
  Observations o = PlainScript();
  for (int i = 0; i < 250; ++i) {
    o.trace.files.push_back(
        {.pid = 100, .operation = FileOperation::kWrite, .path = "/tmp/f" + std::to_string(i)});
  }
  o.trace.truncated = true;
  json r = BuildSandboxReport(Sample(), o);
  EXPECT_LT(r["behaviors"].size(), 120u);
  EXPECT_TRUE(HasBehavior(r, "fileSystem", "150 more fileSystem behaviours"));
  EXPECT_EQ(r["truncated"], true);

  Observations n = PlainScript();
  EXPECT_EQ(BuildSandboxReport(Sample(), n)["truncated"], false);
  n.network.truncated = true;  // the fake network's cap counts too
  EXPECT_EQ(BuildSandboxReport(Sample(), n)["truncated"], true);
}

TEST(SandboxReportTest, EscapesAndSinkholes) {
  EXPECT_EQ(EscapeBytes(std::string("a\0b\t\x7f", 5)), "a\\x00b\\t\\x7f");
  EXPECT_EQ(HexBytes("\x00\xab"), "");  // a string literal stops at NUL
  EXPECT_EQ(HexBytes(std::string("\x00\xab", 2)), "00ab");
  EXPECT_TRUE(IsSinkholeAddress("198.18.0.1"));
  EXPECT_TRUE(IsSinkholeAddress("198.19.255.254"));
  EXPECT_TRUE(IsSinkholeAddress("::ffff:198.18.3.4"));
  EXPECT_FALSE(IsSinkholeAddress("198.20.0.1"));
  EXPECT_FALSE(IsSinkholeAddress("198.180.0.1"));
  EXPECT_FALSE(IsSinkholeAddress("example.com"));
}

}  // namespace
}  // namespace quell::sandbox
