// The sandbox report: what a detonation observed, as behaviours, observables and a verdict.
//
// Verdict rules (each behaviour carries the verdict it implies; the report's verdict is the
// worst one, and its reasons are the descriptions of the behaviours that implied it):
//
//   malicious   - a write, create, rename-into or chmod at a persistence location (see
//                 persistence_locations.h; ld.so.preload, accounts, sudoers and pam included),
//                 attempted or done: with a read-only system the attempt is the evidence;
//               - loading or removing kernel code (init_module, finit_module, delete_module),
//                 replacing the kernel (kexec_load, kexec_file_load);
//               - touching another process's memory or execution: ptrace other than
//                 PTRACE_TRACEME, process_vm_writev.
//   suspicious  - executing a file the sample itself created, wrote or renamed into place;
//               - any other privileged call (mount, unshare, setns, chroot, bpf, keyctl, ...;
//                 refused by seccomp or not), and ptrace(PTRACE_TRACEME) (anti-debugging);
//               - an identity change (setuid ... capset);
//               - the sample deleting its own file, or deleting/truncating logs and shell
//                 history (/var/log/..., .bash_history): covering tracks;
//               - an outbound connection (inet/inet6, not loopback, not DNS transport);
//               - a DNS lookup of a non-local name (not localhost, single-label names, *.local,
//                 *.localdomain, *.arpa, the sandbox's own host name);
//               - a signal to pid 1 or to every process (kill(-1)): in the sandbox's pid
//                 namespace a sample can otherwise reach only its own descendants, and
//                 stopping those is ordinary;
//               - a limit hit: wall-clock timeout, memory limit, pids limit (fork bomb).
//   noThreatsFound - none of the above: e.g. a script that prints text. Processes started,
//                 files created or written elsewhere, chmod +x, unix/loopback connections and
//                 signals to its own children are reported as behaviours of low or
//                 informational severity but do not move the verdict.
//
// DNS transport (UDP to port 53, anything to the sandbox resolver 10.53.53.53) is reported
// through the DNS lookups, not as connections. Sinkhole addresses (198.18.0.0/15, handed out by
// the fake resolver) are never "contacted IPs": a connection to one is attributed to the name
// whose answer it was and listed under domains.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sandbox/observations.h"

namespace quell::sandbox {

struct SampleInfo {
  std::string file_name;  // as it was named inside the sandbox
  uint64_t size = 0;
  std::string sha256, sha1, md5;  // lowercase hex
  std::string kind;               // "elf", "shell", "bash", "python", "perl"
};

// The report JSON documented in docs/api.md, "The sandbox report" ("sample", "verdict",
// "verdictReasons", "behaviors", "observables", "processes", "limits", "startupMs",
// "durationMs", "truncated"). Pure.
nlohmann::json BuildSandboxReport(const SampleInfo& sample, const Observations& observations);

// Bytes as readable text: printable ASCII kept, backslash doubled, \n \r \t as such, every
// other byte as \xNN (lowercase). For connections' firstBytes.
std::string EscapeBytes(std::string_view bytes);
std::string HexBytes(std::string_view bytes);  // lowercase hex, no separators

// Whether `address` (dotted quad, or an IPv4-mapped IPv6 address) is in 198.18.0.0/15.
bool IsSinkholeAddress(std::string_view address);

}  // namespace quell::sandbox
