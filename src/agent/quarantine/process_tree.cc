#include "agent/quarantine/process_tree.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <set>
#include <thread>
#include <unordered_set>

#include "common/files.h"
#include "common/logging.h"

namespace quell::agent::quarantine {
namespace {

auto Log() {
  static auto log = Logger("agent.quarantine");
  return log;
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

std::string Basename(std::string_view p) {
  size_t s = p.rfind('/');
  return std::string(s == std::string_view::npos ? p : p.substr(s + 1));
}

bool IsInterpreter(std::string_view exe) {
  static const std::unordered_set<std::string> kNames = {
      "sh",   "bash", "dash", "zsh",    "ksh",  "mksh",   "ash",   "busybox", "fish",
      "csh",  "tcsh", "python", "perl", "ruby", "node",   "nodejs", "php",   "lua",
      "tclsh", "wish", "Rscript", "pwsh", "osascript", "awk", "gawk", "mawk", "expect"};
  std::string name = Basename(exe);
  while (!name.empty() && (std::isdigit(static_cast<unsigned char>(name.back())) || name.back() == '.')) {
    name.pop_back();
  }
  return kNames.contains(name);
}

// "a/./b" and "./x" tidied enough to compare a relative script argument with a path.
std::string Resolve(const std::string& cwd, const std::string& arg) {
  if (arg.starts_with('/')) return arg;
  if (cwd.empty()) return {};
  std::string rel = arg;
  while (rel.starts_with("./")) rel.erase(0, 2);
  return cwd == "/" ? "/" + rel : cwd + "/" + rel;
}

// Start time and state of a live process; false if gone.
bool ReadStat(const std::string& proc_root, pid_t pid, uint64_t& start_time, char& state) {
  auto text = ReadFile(proc_root + "/" + std::to_string(pid) + "/stat");
  if (!text.ok()) return false;
  pid_t ppid = 0;
  if (!ParseProcStat(*text, ppid, start_time)) return false;
  size_t close = text->rfind(')');
  state = close + 2 < text->size() ? (*text)[close + 2] : '?';
  return true;
}

}  // namespace

bool ParseProcStat(std::string_view text, pid_t& ppid, uint64_t& start_time) {
  // comm (field 2) may contain spaces and ')': fields resume after the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return false;
  std::string_view rest = text.substr(close + 1);
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
    if (j > i) fields.push_back(rest.substr(i, j - i));
    i = j + 1;
  }
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  if (fields.size() < 20) return false;
  try {
    ppid = static_cast<pid_t>(std::stol(std::string(fields[1])));
    start_time = std::stoull(std::string(fields[19]));
  } catch (...) {
    return false;
  }
  return true;
}

std::vector<ProcessInfo> ReadProcessTable(const std::string& proc_root) {
  std::vector<ProcessInfo> out;
  DIR* d = ::opendir(proc_root.c_str());
  if (d == nullptr) return out;
  std::vector<pid_t> pids;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string_view::npos) continue;
    pids.push_back(static_cast<pid_t>(std::stol(std::string(name))));
  }
  ::closedir(d);
  std::sort(pids.begin(), pids.end());
  for (pid_t pid : pids) {
    const std::string dir = proc_root + "/" + std::to_string(pid);
    auto stat_text = ReadFile(dir + "/stat");
    if (!stat_text.ok()) continue;
    ProcessInfo p;
    p.pid = pid;
    if (!ParseProcStat(*stat_text, p.ppid, p.start_time)) continue;
    p.exe = ReadLink(dir + "/exe");
    static constexpr std::string_view kDeleted = " (deleted)";
    if (p.exe.ends_with(kDeleted)) {
      p.exe.resize(p.exe.size() - kDeleted.size());
      p.exe_deleted = true;
    }
    struct stat st {};
    if (!p.exe.empty() && ::stat((dir + "/exe").c_str(), &st) == 0) {
      p.exe_id_known = true;
      p.exe_dev = st.st_dev;
      p.exe_ino = st.st_ino;
    }
    if (auto cmdline = ReadFile(dir + "/cmdline"); cmdline.ok()) {
      size_t start = 0;
      while (start < cmdline->size()) {
        size_t end = cmdline->find('\0', start);
        if (end == std::string::npos) end = cmdline->size();
        p.argv.push_back(cmdline->substr(start, end - start));
        start = end + 1;
      }
    }
    p.cwd = ReadLink(dir + "/cwd");
    if (IsInterpreter(p.exe) || (p.exe.empty() && !p.argv.empty() && IsInterpreter(p.argv[0]))) {
      p.arg_ids.assign(p.argv.size(), {0, 0});
      for (size_t i = 1; i < p.argv.size(); ++i) {
        const std::string& arg = p.argv[i];
        if (arg.empty()) continue;
        std::string seen = arg.front() == '/' ? dir + "/root" + arg : dir + "/cwd/" + arg;
        struct stat ast {};
        if (::stat(seen.c_str(), &ast) == 0 && S_ISREG(ast.st_mode)) {
          p.arg_ids[i] = {ast.st_dev, ast.st_ino};
        }
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::string HowProcessRuns(const ProcessInfo& p, const FileIdentity& f) {
  if (!p.exe.empty()) {
    if (f.id_known && p.exe_id_known) {
      if (f.dev == p.exe_dev && f.ino == p.exe_ino) return "executable";
    } else if (p.exe == f.path) {
      return "executable";
    }
  }
  if (p.argv.size() >= 2 && (IsInterpreter(p.exe) || (p.exe.empty() && IsInterpreter(p.argv[0])))) {
    for (size_t i = 1; i < p.argv.size(); ++i) {
      const bool id_known = i < p.arg_ids.size() && p.arg_ids[i] != std::pair<uint64_t, uint64_t>{0, 0};
      if (f.id_known && id_known) {
        if (p.arg_ids[i] == std::pair<uint64_t, uint64_t>{f.dev, f.ino}) return "script";
      } else if (!id_known && Resolve(p.cwd, p.argv[i]) == f.path) {
        return "script";
      }
    }
  }
  return "";
}

Status PidfdSignaller::Signal(const ProcessInfo& p, int sig) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, p.pid, 0));
  if (fd < 0 && errno == ESRCH) return Status::Ok();
  const bool have_fd = fd >= 0;
  if (!have_fd && errno != ENOSYS) return ErrnoStatus("pidfd_open " + std::to_string(p.pid));
  // With the pidfd held, the pid cannot be reused: check it is still the process we saw.
  uint64_t start = 0;
  char state = '?';
  if (!ReadStat(proc_root_, p.pid, start, state) || start != p.start_time) {
    if (have_fd) ::close(fd);
    return Status::Ok();
  }
  int rc = have_fd ? static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0))
                   : ::kill(p.pid, sig);
  const int err = errno;
  if (have_fd) ::close(fd);
  if (rc != 0 && err != ESRCH) return ErrnoStatus("signal " + std::to_string(p.pid), err);
  return Status::Ok();
}

std::vector<pid_t> PidfdSignaller::WaitExited(const std::vector<ProcessInfo>& ps,
                                              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<pid_t> alive;
  while (true) {
    alive.clear();
    for (const ProcessInfo& p : ps) {
      uint64_t start = 0;
      char state = '?';
      if (ReadStat(proc_root_, p.pid, start, state) && start == p.start_time && state != 'Z' &&
          state != 'X') {
        alive.push_back(p.pid);
      }
    }
    if (alive.empty() || std::chrono::steady_clock::now() >= deadline) return alive;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Result<std::vector<KilledProcess>> KillProcessesRunning(const std::vector<FileIdentity>& files,
                                                        const KillOptions& options,
                                                        ProcessSignaller& signaller) {
  const pid_t self = options.self_pid != 0 ? options.self_pid : ::getpid();
  auto spared = [&](pid_t pid) { return pid == self || pid <= 1; };
  std::vector<KilledProcess> killed;
  for (int round = 0; round < std::max(1, options.rounds); ++round) {
    std::vector<ProcessInfo> table = ReadProcessTable(options.proc_root);
    std::map<pid_t, ProcessInfo> targets;
    std::map<pid_t, KilledProcess> why;
    for (const ProcessInfo& p : table) {
      if (spared(p.pid)) continue;
      for (const FileIdentity& f : files) {
        std::string how = HowProcessRuns(p, f);
        if (how.empty()) continue;
        targets[p.pid] = p;
        why[p.pid] = {p.pid, p.exe + (p.exe_deleted ? " (deleted)" : ""), how, f.path};
        break;
      }
    }
    if (targets.empty()) break;
    // Stop, then add descendants until the tree no longer grows (a stopped process cannot
    // fork, so this converges).
    std::set<pid_t> stopped;
    for (int pass = 0; pass < 16; ++pass) {
      for (const auto& [pid, p] : targets) {
        if (stopped.insert(pid).second) {
          if (Status s = signaller.Signal(p, SIGSTOP); !s.ok()) Log()->warn("{}", s.ToString());
        }
      }
      bool grew = false;
      for (const ProcessInfo& p : ReadProcessTable(options.proc_root)) {
        if (spared(p.pid) || targets.contains(p.pid) || !targets.contains(p.ppid)) continue;
        targets[p.pid] = p;
        const KilledProcess& parent = why[p.ppid];
        why[p.pid] = {p.pid, p.exe + (p.exe_deleted ? " (deleted)" : ""), "descendant", parent.file};
        grew = true;
      }
      if (!grew) break;
    }
    std::vector<ProcessInfo> list;
    for (const auto& [pid, p] : targets) {
      if (Status s = signaller.Signal(p, SIGKILL); !s.ok()) Log()->warn("{}", s.ToString());
      // SIGKILL ends a stopped process too; SIGCONT is not needed.
      list.push_back(p);
      killed.push_back(why[pid]);
    }
    std::vector<pid_t> alive = signaller.WaitExited(list, options.wait);
    if (!alive.empty()) {
      std::string pids;
      for (pid_t a : alive) pids += (pids.empty() ? "" : ", ") + std::to_string(a);
      return Internal("processes still alive after SIGKILL: " + pids);
    }
  }
  return killed;
}

}  // namespace quell::agent::quarantine
