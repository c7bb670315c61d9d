// What one detonation observed, as plain records: the contract between the parts of
// quell-sandbox. The tracer (syscall_tracer) fills the process, file, connection, privilege
// and signal records; the fake network (fake_network) fills the DNS and TCP records; the
// runner (sandbox_runner) fills the limits and timings; the report (sandbox_report) reads
// them all and decides the verdict.
//
// Paths are as the sample saw them (absolute, resolved against the process's cwd; not
// canonicalized). Times are milliseconds since the sample was released.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace quell::sandbox {

struct ProcessRecord {
  pid_t pid = 0;                   // as seen from the sandbox supervisor
  pid_t parent_pid = 0;            // 0 for the sample itself
  int64_t started_ms = 0;
  std::string executable;          // the path given to execve, empty until an exec
  std::vector<std::string> argv;   // of the last execve (truncated to 64 items, 4 KiB each)
  std::optional<int> exit_code;    // set when it exited
  std::optional<int> killed_by;    // signal number when a signal ended it
};

// setuid, setgid, setreuid, setresuid, setresgid, setgroups, setfsuid, capset.
struct IdentityChange {
  pid_t pid = 0;
  int64_t at_ms = 0;
  std::string call;            // the syscall's name
  std::vector<int64_t> ids;    // its id arguments
  int64_t result = 0;          // the return value (negative errno on failure)
};

enum class FileOperation { kCreate, kWrite, kRename, kDelete, kChmod };

struct FileRecord {
  pid_t pid = 0;
  int64_t at_ms = 0;
  FileOperation operation = FileOperation::kWrite;
  std::string path;
  std::string new_path;   // kRename: where it went
  uint32_t mode = 0;      // kChmod: the new mode; kCreate: the creation mode
  int64_t result = 0;     // the return value (negative errno: the attempt failed)
};

// A file the sample left behind in a writable place, read after the run.
struct DroppedFile {
  std::string path;       // as the sample saw it
  uint64_t size = 0;
  std::string sha256;     // lowercase hex
  bool executable = false;  // any x bit set, or an ELF / #! header
};

struct ConnectRecord {
  pid_t pid = 0;
  int64_t at_ms = 0;
  std::string family;     // "inet", "inet6" or "unix"
  std::string address;    // dotted / colon form, or the unix socket path
  uint16_t port = 0;
  std::string protocol;   // "tcp", "udp" (connect on a datagram socket) or "" when unknown
  int64_t result = 0;
};

// Calls a sample never needs for its work: module loading, kexec, mount, ptrace, bpf, ...
// Seccomp refuses most of them; the attempt is the behaviour.
struct PrivilegedCall {
  pid_t pid = 0;
  int64_t at_ms = 0;
  std::string call;       // the syscall's name
  std::string detail;     // e.g. the mount target, the ptrace request
  int64_t result = 0;
};

struct SignalRecord {
  pid_t pid = 0;          // the sender
  int64_t at_ms = 0;
  pid_t target = 0;       // as the sample named it (may be negative: a process group)
  int signal = 0;
  int64_t result = 0;
};

// The fake network's view.
struct DnsRecord {
  int64_t at_ms = 0;
  std::string name;       // as asked, without the trailing dot
  std::string type;       // "A", "AAAA", "MX", ... or the number
  std::string answer;     // the sinkhole address given, or "" when answered with no records
};

struct TcpSessionRecord {
  int64_t at_ms = 0;
  std::string address;    // where the sample meant to connect
  uint16_t port = 0;
  std::string first_bytes;  // up to kFirstBytesKept of what the sample sent, raw
  uint64_t bytes_received = 0;
};
inline constexpr size_t kFirstBytesKept = 256;

struct NetworkLog {
  std::vector<DnsRecord> dns;
  std::vector<TcpSessionRecord> tcp;
  bool truncated = false;           // a record cap was hit; later queries/sessions not recorded
};

// How the run ended.
struct RunOutcome {
  bool timed_out = false;           // the wall-clock limit killed it
  bool memory_limit_hit = false;    // the memory cgroup killed something
  bool pids_limit_hit = false;      // a fork was refused by the pids cgroup
  std::optional<int> exit_code;     // of the sample itself
  std::optional<int> killed_by;     // signal that ended the sample itself
  int64_t startup_ms = 0;           // supervisor start -> the sample's execve returned
  int64_t duration_ms = 0;          // release -> last process gone
};

struct Trace {
  std::vector<ProcessRecord> processes;
  std::vector<IdentityChange> identity_changes;
  std::vector<FileRecord> files;
  std::vector<ConnectRecord> connections;
  std::vector<PrivilegedCall> privileged_calls;
  std::vector<SignalRecord> signals;
  bool truncated = false;           // a record cap was hit; later records were dropped
  std::optional<int64_t> sample_exec_ms;  // when the sample's own execve returned
};

struct Observations {
  Trace trace;
  NetworkLog network;
  std::vector<DroppedFile> dropped_files;
  RunOutcome outcome;
};

}  // namespace quell::sandbox
