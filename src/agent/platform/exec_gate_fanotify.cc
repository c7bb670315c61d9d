#include "agent/platform/exec_gate_fanotify.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cerrno>

namespace quell::agent {

FanotifyExecGate::~FanotifyExecGate() { Close(); }

Status FanotifyExecGate::Open() {
  std::lock_guard lock(mutex_);
  if (fan_fd_ >= 0) return FailedPrecondition("exec gate already open");
  int fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("fanotify_init(FAN_CLASS_CONTENT)");
  int mi = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (mi < 0) {
    Status s = ErrnoStatus("open /proc/self/mountinfo");
    close(fd);
    return s;
  }
  fan_fd_ = fd;
  mountinfo_fd_ = mi;
  return Status::Ok();
}

Status FanotifyExecGate::MarkMount(const std::string& mount_point) {
  std::lock_guard lock(mutex_);
  if (fan_fd_ < 0) return FailedPrecondition("exec gate is not open");
  // FAN_MARK_MOUNT, never FAN_MARK_FILESYSTEM: a filesystem mark would reach every mount
  // namespace sharing the filesystem, including the host running a lab.
  if (fanotify_mark(fan_fd_, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN_EXEC_PERM, AT_FDCWD,
                    mount_point.c_str()) != 0) {
    return ErrnoStatus("fanotify_mark " + mount_point);
  }
  return Status::Ok();
}

Result<ExecWait> FanotifyExecGate::Wait(std::chrono::milliseconds timeout) {
  int fan = -1, mi = -1;
  {
    std::lock_guard lock(mutex_);
    fan = fan_fd_;
    mi = mountinfo_fd_;
  }
  if (fan < 0) return FailedPrecondition("exec gate is not open");
  pollfd fds[2] = {{fan, POLLIN, 0}, {mi, POLLPRI, 0}};
  int n = poll(fds, 2, static_cast<int>(timeout.count()));
  ExecWait out;
  if (n < 0) {
    if (errno == EINTR) return out;
    return ErrnoStatus("poll fanotify");
  }
  if (n == 0) return out;
  if (fds[1].revents & (POLLPRI | POLLERR)) {
    out.mounts_changed = true;
    // Re-arm: the next change is signalled only after the file is read from the start.
    char buf[4096];
    lseek(mi, 0, SEEK_SET);
    while (read(mi, buf, sizeof buf) > 0) {
    }
  }
  if (fds[0].revents & POLLIN) {
    alignas(fanotify_event_metadata) char buf[8192];
    ssize_t len = read(fan, buf, sizeof buf);
    if (len < 0) {
      if (errno == EAGAIN || errno == EINTR) return out;
      return ErrnoStatus("read fanotify");
    }
    std::lock_guard lock(mutex_);
    for (auto* m = reinterpret_cast<fanotify_event_metadata*>(buf); FAN_EVENT_OK(m, len);
         m = FAN_EVENT_NEXT(m, len)) {
      if (m->vers != FANOTIFY_METADATA_VERSION) {
        if (m->fd >= 0) close(m->fd);
        return Internal("fanotify metadata version mismatch");
      }
      if (m->mask & FAN_Q_OVERFLOW) {
        out.overflow = true;
        continue;
      }
      if (m->fd < 0) continue;
      out.requests.push_back(ExecRequest{.fd = m->fd, .pid = m->pid, .id = next_id_++});
    }
  }
  return out;
}

Status FanotifyExecGate::Respond(const ExecRequest& request, bool allow) {
  Status status;
  {
    std::lock_guard lock(mutex_);
    if (fan_fd_ >= 0) {
      fanotify_response r{.fd = request.fd, .response = static_cast<__u32>(allow ? FAN_ALLOW : FAN_DENY)};
      if (write(fan_fd_, &r, sizeof r) != sizeof r) status = ErrnoStatus("fanotify response");
    }
  }
  close(request.fd);
  return status;
}

void FanotifyExecGate::Close() {
  std::lock_guard lock(mutex_);
  // Closing the fanotify fd removes every mark and answers every pending event with allow.
  if (fan_fd_ >= 0) close(fan_fd_);
  if (mountinfo_fd_ >= 0) close(mountinfo_fd_);
  fan_fd_ = mountinfo_fd_ = -1;
}

bool FanotifyExecGate::IsOpen() const {
  std::lock_guard lock(mutex_);
  return fan_fd_ >= 0;
}

}  // namespace quell::agent
