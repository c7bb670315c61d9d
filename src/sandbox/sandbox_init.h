// The sandbox's side of a detonation: the plan of its throw-away root (made by the supervisor
// on the host, as data) and the init process that carries it out inside the new namespaces,
// then forks and reaps the sample. Internal to sandbox_runner.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "sandbox/dropped_files.h"
#include "sandbox/sample_kind.h"
#include "sandbox/sandbox_network.h"

namespace quell::sandbox {

// Host uid/gid `kSandboxIdBase + n` is uid/gid n inside the sandbox, for n < kSandboxIdCount.
inline constexpr uid_t kSandboxIdBase = 100000;
inline constexpr uid_t kSandboxIdCount = 65536;
// Where the sample and its working directory are inside the sandbox.
inline constexpr char kSandboxWorkDir[] = "/analysis";

struct MountStep {
  enum class Kind {
    kBindReadOnly,  // a host tree, read-only
    kBindWritable,  // a scratch directory (the scratch tmpfs is nosuid, nodev)
    kSymlink,       // `target` -> `source` (made by the supervisor; skipped by init)
  };
  Kind kind = Kind::kBindReadOnly;
  std::string source;  // host path
  std::string target;  // path inside the sandbox (absolute)
};

// The throw-away root under `scratch` (a tmpfs the supervisor mounted): the directories and
// files to create on the host, the mounts init makes, the writable trees to walk afterwards.
struct SandboxRootPlan {
  std::string scratch;
  std::string root;                        // <scratch>/root: becomes "/"
  std::vector<std::string> skeleton_dirs;  // inside the sandbox, 0755, owned by host root
  std::vector<std::string> device_files;   // inside the sandbox: /dev/null, ... (bound)
  std::vector<MountStep> mounts;           // in order
  std::vector<WritableDir> writable;       // host scratch dir <-> sandbox path
  std::string resolv_conf;                 // host path of the sandbox's resolv.conf
};

// Plans the root from what exists on the host under `host_root` ("/" except in tests):
// system trees (/usr, /etc, /opt, /var, and /bin, /lib... when they are directories) bound
// read-only, /bin-style symlinks copied, /tmp, /var/tmp, /root, /home, /run, /dev/shm and the
// work dir writable and empty, /srv, /mnt, /media empty, /var/lib/quell and /etc/quell
// hidden (the analysis host's own state), a few device nodes, /etc/resolv.conf pointing at
// the fake resolver. Nothing else of the host is visible. Pure apart from reading `host_root`.
SandboxRootPlan PlanSandboxRoot(const std::string& scratch, const std::string& host_root = "/");

// Creates the plan's directories, files and symlinks under plan.root and the writable dirs
// (owned by the sandbox's root), and writes resolv.conf. Runs on the host, as root.
Status PrepareSandboxRoot(const SandboxRootPlan& plan);

struct InitConfig {
  SandboxRootPlan plan;
  SampleKind kind = SampleKind::kElf;
  std::string sample_path;  // inside the sandbox
  ino_t host_netns_inode = 0;
  int control_fd = -1;  // SOCK_SEQPACKET to the supervisor (see sandbox_init.cc)
};

// Control messages (one byte each; kReady carries the two network sockets, kFailed a text).
inline constexpr char kMsgMapped = 'M';   // supervisor -> init: id maps and cgroups are set
inline constexpr char kMsgReady = 'R';    // init -> supervisor: set up, seccomp loaded
inline constexpr char kMsgFailed = 'E';   // init -> supervisor: followed by the reason
inline constexpr char kMsgRelease = 'G';  // supervisor -> init: start the sample

// Supervisor side: waits for init's answer to kMsgMapped. The network sockets on kMsgReady;
// Internal with init's reason on kMsgFailed or when init died; Cancelled when `cancel_fd`
// becomes readable first; DeadlineExceeded after `timeout`.
Result<SandboxNetworkSockets> ReceiveReady(int control_fd, int cancel_fd,
                                           std::chrono::milliseconds timeout);

// The body of the sandbox's init (pid 1 of the new namespaces). Never returns: exits with the
// sample's status (128+signal when a signal ended it), 125 when the set-up failed.
[[noreturn]] void RunSandboxInit(const InitConfig& config);

}  // namespace quell::sandbox
