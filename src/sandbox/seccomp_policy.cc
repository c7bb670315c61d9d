#include "sandbox/seccomp_policy.h"

#include <errno.h>
#include <seccomp.h>

#include <array>
#include <string>

#if !defined(__x86_64__)
#error "quell-sandbox supports x86_64 only"
#endif

namespace quell::sandbox {
namespace {

// Grouped by why: kernel code and boot, mounts and namespaces that would escape the
// throw-away root, debugging/injection of other processes, kernel attack surface (bpf,
// perf, userfaultfd, keyrings), and host-wide settings (clock, swap, accounting).
constexpr std::array<std::string_view, 41> kDenied = {
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "setns", "unshare", "open_by_handle_at",
    "name_to_handle_at",
    "ptrace", "process_vm_writev", "kcmp",
    "bpf", "perf_event_open", "userfaultfd", "add_key", "request_key", "keyctl", "lookup_dcookie",
    "iopl", "ioperm", "syslog",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "swapon", "swapoff", "acct",
};

class Filter {
 public:
  explicit Filter(uint32_t def) : ctx_(seccomp_init(def)) {}
  ~Filter() {
    if (ctx_ != nullptr) seccomp_release(ctx_);
  }
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;
  scmp_filter_ctx get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};

Status SeccompError(std::string_view what, int rc) { return ErrnoStatus(what, -rc); }

}  // namespace

std::span<const std::string_view> SeccompDeniedCalls() { return kDenied; }

Status LoadSeccompPolicy() {
  Filter filter(SCMP_ACT_ALLOW);
  if (filter.get() == nullptr) return Internal("seccomp_init failed");
  // 32-bit x86 binaries run too, under the same rules (int 0x80 has its own numbers).
  int rc = seccomp_arch_add(filter.get(), SCMP_ARCH_X86);
  if (rc != 0 && rc != -EEXIST) return SeccompError("seccomp_arch_add x86", rc);
  // A call from a foreign ABI (x32) is refused rather than killing the process.
  rc = seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(EPERM));
  if (rc != 0) return SeccompError("seccomp_attr_set badarch", rc);
  for (std::string_view name : kDenied) {
    int nr = seccomp_syscall_resolve_name(std::string(name).c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: nothing to refuse
    rc = seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
    // -EDOM/-EINVAL: the call does not exist on one of the architectures (e.g. iopl).
    if (rc != 0 && rc != -EDOM && rc != -EINVAL && rc != -EEXIST) {
      return SeccompError("seccomp_rule_add " + std::string(name), rc);
    }
  }
  rc = seccomp_load(filter.get());
  if (rc != 0) return SeccompError("seccomp_load", rc);
  return Status::Ok();
}

}  // namespace quell::sandbox
