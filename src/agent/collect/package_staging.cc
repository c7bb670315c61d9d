#include "agent/collect/package_staging.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "agent/collect/secret_screen.h"
#include "common/files.h"
#include "common/unique_fd.h"

namespace quell::agent::collect {
namespace {

namespace fs = std::filesystem;

constexpr char kSearchPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

bool ValidComponent(std::string_view c) { return !c.empty() && c != "." && c != ".."; }

// Writes all of `data`; false on a write error.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string ErrnoText(int err) { return std::strerror(err); }

// argv[0] as an executable path: taken as is when it has a '/', else looked up in kSearchPath.
std::string FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  std::string_view dirs = kSearchPath;
  while (!dirs.empty()) {
    size_t colon = dirs.find(':');
    std::string candidate = std::string(dirs.substr(0, colon)) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
  }
  return "";
}

std::string CommandLine(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

// The first line of what a failed command said, for the failure reason.
std::string FirstLine(std::string text) {
  if (size_t nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
  if (text.size() > 300) text.resize(300);
  return text;
}

}  // namespace

PackageStaging::PackageStaging(std::string dir, CollectLimits limits, std::stop_token stop,
                               const Clock& clock)
    : dir_(std::move(dir)),
      limits_(limits),
      stop_(std::move(stop)),
      clock_(clock),
      deadline_(clock.Now() + limits.time_limit.count()) {}

PackageStaging::~PackageStaging() = default;

Result<std::unique_ptr<PackageStaging>> PackageStaging::Create(std::string dir,
                                                               CollectLimits limits,
                                                               std::stop_token stop,
                                                               const Clock& clock) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return Internal("cannot clear " + dir + ": " + ec.message());
  QUELL_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  return std::unique_ptr<PackageStaging>(
      new PackageStaging(std::move(dir), limits, std::move(stop), clock));
}

bool PackageStaging::Exhausted() const { return !ExhaustedReason().empty(); }

std::string PackageStaging::ExhaustedReason() const {
  if (stop_.stop_requested()) return "cancelled";
  if (hit_total_cap_) return "size limit";
  if (clock_.Now() >= deadline_) return "time limit";
  return "";
}

std::chrono::milliseconds PackageStaging::Remaining() const {
  return std::chrono::milliseconds(std::max<UnixMillis>(0, deadline_ - clock_.Now()));
}

uint64_t PackageStaging::ArtifactBudget() const {
  const uint64_t left =
      limits_.max_total_bytes > total_bytes_ ? limits_.max_total_bytes - total_bytes_ : 0;
  return std::min(limits_.max_artifact_bytes, left);
}

Result<std::string> PackageStaging::PrepareTarget(std::string_view topic, std::string_view name) {
  if (!ValidComponent(topic) || topic.find('/') != std::string_view::npos) {
    return InvalidArgument("bad topic '" + std::string(topic) + "'");
  }
  std::string relative(topic);
  std::string_view rest = name;
  if (rest.empty()) return InvalidArgument("empty artifact name");
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (!ValidComponent(part) || part.find('\0') != std::string_view::npos) {
      return InvalidArgument("bad artifact name '" + std::string(name) + "'");
    }
    relative += "/" + std::string(part);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  const std::string path = dir_ + "/" + relative;
  QUELL_RETURN_IF_ERROR(MakeDirs(path.substr(0, path.rfind('/')), 0700));
  return path;
}

void PackageStaging::Record(StagedArtifact artifact) {
  total_bytes_ += artifact.bytes;
  // Cut because the total ran out, not the per-artifact cap: nothing more fits.
  if (artifact.truncated && ArtifactBudget() < limits_.max_artifact_bytes &&
      total_bytes_ >= limits_.max_total_bytes) {
    hit_total_cap_ = true;
  }
  artifacts_.push_back(std::move(artifact));
}

void PackageStaging::RecordFailure(std::string_view topic, std::string_view what,
                                   std::string_view reason) {
  failures_.push_back({std::string(topic), std::string(what), std::string(reason)});
}

bool PackageStaging::AddText(std::string_view topic, std::string_view name, std::string_view text,
                             std::string_view source) {
  return AddScreenedText(topic, name, text, source, 0);
}

bool PackageStaging::AddScreenedText(std::string_view topic, std::string_view name,
                                     std::string_view text, std::string_view source,
                                     uint32_t removed_before) {
  if (Exhausted()) return false;
  auto target = PrepareTarget(topic, name);
  if (!target.ok()) {
    RecordFailure(topic, name, target.status().message());
    return false;
  }
  uint32_t removed = 0;
  std::string screened = RedactSecrets(text, &removed);
  const uint64_t budget = ArtifactBudget();
  const bool truncated = screened.size() > budget;
  if (truncated) screened.resize(budget);
  UniqueFd fd(::open(target->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd || !WriteAll(fd.get(), screened)) {
    RecordFailure(topic, name, "cannot write the staging file: " + ErrnoText(errno));
    return false;
  }
  Record({std::string(topic), std::string(name), std::string(source), screened.size(), truncated,
          removed_before + removed});
  return true;
}

bool PackageStaging::AddJson(std::string_view topic, std::string_view name,
                             const nlohmann::json& value, std::string_view source) {
  // Screened value by value first, so that a removal keeps the document valid JSON.
  nlohmann::json screened = value;
  const uint32_t removed = RedactSecretsInJson(screened);
  return AddScreenedText(
      topic, name, screened.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
      source, removed);
}

Result<PackageStaging::Copied> PackageStaging::CopyScreened(int in, int out, uint64_t budget) {
  Copied copied;
  SecretRedactor redactor;
  char buf[64 * 1024];
  off_t offset = 0;
  auto emit = [&](std::string screened) -> Status {
    if (copied.bytes + screened.size() > budget) {
      screened.resize(budget - copied.bytes);
      copied.truncated = true;
    }
    if (!WriteAll(out, screened)) {
      return Internal("cannot write the staging file: " + ErrnoText(errno));
    }
    copied.bytes += screened.size();
    return Status::Ok();
  };
  while (!copied.truncated) {
    ssize_t n = ::pread(in, buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal("read failed: " + ErrnoText(errno));
    if (n == 0) {
      QUELL_RETURN_IF_ERROR(emit(redactor.Finish()));
      break;
    }
    offset += n;
    QUELL_RETURN_IF_ERROR(emit(redactor.Feed(std::string_view(buf, static_cast<size_t>(n)))));
  }
  copied.secrets_removed = redactor.removed();
  return copied;
}

bool PackageStaging::AddFileCopy(std::string_view topic, std::string_view name,
                                 const std::string& path) {
  if (Exhausted()) return false;
  if (IsPasswordHashFile(path)) {
    RecordFailure(topic, path, "not collected: password hashes are never collected");
    return false;
  }
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!in) {
    const int err = errno;
    RecordFailure(topic, path,
                  err == ELOOP ? "is a symbolic link (not followed)" : ErrnoText(err));
    return false;
  }
  struct stat st{};
  if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    RecordFailure(topic, path, "is not a regular file");
    return false;
  }
  auto target = PrepareTarget(topic, name);
  if (!target.ok()) {
    RecordFailure(topic, path, target.status().message());
    return false;
  }
  UniqueFd out(::open(target->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) {
    RecordFailure(topic, path, "cannot write the staging file: " + ErrnoText(errno));
    return false;
  }
  // Copied until EOF rather than st_size: /proc and /sys files report size 0.
  Result<Copied> copied = CopyScreened(in.get(), out.get(), ArtifactBudget());
  if (!copied.ok()) {
    out.Reset();
    (void)RemoveFile(*target);
    RecordFailure(topic, path, copied.status().message());
    return false;
  }
  Record({std::string(topic), std::string(name), path, copied->bytes, copied->truncated,
          copied->secrets_removed});
  return true;
}

bool PackageStaging::AddCommandOutput(std::string_view topic, std::string_view name,
                                      const std::vector<std::string>& argv) {
  if (Exhausted() || argv.empty()) return false;
  const std::string command = CommandLine(argv);
  const std::string program = FindProgram(argv[0]);
  if (program.empty()) {
    RecordFailure(topic, command, "'" + argv[0] + "' is not installed");
    return false;
  }
  auto target = PrepareTarget(topic, name);
  if (!target.ok()) {
    RecordFailure(topic, command, target.status().message());
    return false;
  }
  // The command writes to an unnamed file; what it wrote is screened into the target after.
  UniqueFd raw_out(::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  UniqueFd err_out(::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd out(::open(target->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!raw_out || !err_out || !null_in || !out) {
    RecordFailure(topic, command, "cannot prepare the staging file: " + ErrnoText(errno));
    return false;
  }
  const uint64_t budget = ArtifactBudget();
  const auto timeout = std::min(limits_.command_timeout, Remaining());

  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string path_env = std::string("PATH=") + kSearchPath;
  std::vector<char*> env = {path_env.data(), const_cast<char*>("LC_ALL=C"),
                            const_cast<char*>("TERM=dumb"), const_cast<char*>("SYSTEMD_PAGER="),
                            const_cast<char*>("PAGER=cat"), nullptr};
  const rlimit fsize{budget, budget};
  const rlimit no_core{0, 0};

  const pid_t pid = ::fork();
  if (pid < 0) {
    RecordFailure(topic, command, "cannot start: " + ErrnoText(errno));
    return false;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::setrlimit(RLIMIT_FSIZE, &fsize);  // the per-artifact cap, enforced by the kernel
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::dup2(null_in.get(), 0);
    ::dup2(raw_out.get(), 1);
    ::dup2(err_out.get(), 2);
    ::execve(program.c_str(), args.data(), env.data());
    _exit(127);
  }
  int status = 0;
  bool timed_out = false;
  // Waited on the steady clock: the injected clock is for the package's deadline.
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= give_up || stop_.stop_requested()) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(-pid, SIGKILL);  // anything it left running in its group

  const bool cut = WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ;
  std::string errors(512, '\0');
  ssize_t got = ::pread(err_out.get(), errors.data(), errors.size(), 0);
  errors.resize(got > 0 ? static_cast<size_t>(got) : 0);
  Result<Copied> copied = CopyScreened(raw_out.get(), out.get(), budget);
  if (!copied.ok()) {
    out.Reset();
    (void)RemoveFile(*target);
    RecordFailure(topic, command, copied.status().message());
    return false;
  }
  const uint64_t size = copied->bytes;
  if (!timed_out && !cut && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    std::string reason = WIFEXITED(status)
                             ? "exited with status " + std::to_string(WEXITSTATUS(status))
                             : "killed by signal " + std::to_string(WTERMSIG(status));
    if (!errors.empty()) reason += ": " + FirstLine(errors);
    RecordFailure(topic, command, reason);
    if (size == 0) {
      out.Reset();
      (void)RemoveFile(*target);
      return false;
    }
  }
  if (timed_out) {
    RecordFailure(topic, command,
                  stop_.stop_requested()
                      ? "cancelled"
                      : "timed out after " + std::to_string(timeout.count() / 1000) +
                            " s; the output so far is kept");
  }
  Record({std::string(topic), std::string(name), command, size,
          timed_out || cut || copied->truncated, copied->secrets_removed});
  return true;
}

}  // namespace quell::agent::collect
