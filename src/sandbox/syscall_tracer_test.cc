// Privileged: traces real children of this test (no sandbox needed). Each test forks a child
// that blocks on a pipe, attaches, releases it, and checks what the tracer recorded.
#include "sandbox/syscall_tracer.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/unique_fd.h"

namespace quell::sandbox {
namespace {

namespace fs = std::filesystem;
constexpr char kPython[] = "/usr/bin/python3";

class SyscallTracerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (ptrace of children, setuid samples)";
    char tmpl[] = "/tmp/quell-tracer-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Runs `argv` under the tracer. With `as_init`, the traced child plays the sandbox's init:
  // it writes `dir_/init-file` (must not be recorded), forks the sample, reaps everything and
  // exits with the sample's status; Run gets its pid as the quiet pid.
  Trace TraceArgv(const std::vector<std::string>& argv, TracerLimits limits = {},
                  bool as_init = false) {
    std::vector<char*> cargv;
    for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    const std::string init_file = dir_ + "/init-file";
    int release[2];
    EXPECT_EQ(pipe2(release, O_CLOEXEC), 0);
    pid_t child = fork();
    if (child == 0) {
      char c;
      while (read(release[0], &c, 1) < 0 && errno == EINTR) {
      }
      if (!as_init) {
        execv(cargv[0], cargv.data());
        _exit(127);
      }
      int fd = open(init_file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd >= 0) close(fd);
      pid_t sample = fork();
      if (sample == 0) {
        execv(cargv[0], cargv.data());
        _exit(127);
      }
      int status = 0, sample_status = 0;
      pid_t done;
      while ((done = waitpid(-1, &status, 0)) > 0) {
        if (done == sample) sample_status = status;
      }
      _exit(WIFEXITED(sample_status) ? WEXITSTATUS(sample_status) : 128);
    }
    close(release[0]);
    init_pid_ = child;
    SyscallTracer tracer(std::chrono::steady_clock::now(), limits);
    Status attached = tracer.Attach(child);
    EXPECT_TRUE(attached.ok()) << attached.ToString();
    EXPECT_EQ(write(release[1], "x", 1), 1);
    close(release[1]);
    if (!attached.ok()) {
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
      return {};
    }
    Result<Trace> trace = tracer.Run(as_init ? child : 0);
    EXPECT_TRUE(trace.ok()) << trace.status().ToString();
    return trace.ok() ? std::move(trace).value() : Trace{};
  }

  Trace TraceShell(const std::string& script) { return TraceArgv({"/bin/sh", "-c", script}); }
  Trace TracePython(const std::string& code) { return TraceArgv({kPython, "-c", code}); }

  static const FileRecord* FindFile(const Trace& t, FileOperation op, const std::string& path) {
    for (const FileRecord& f : t.files) {
      if (f.operation == op && f.path == path) return &f;
    }
    return nullptr;
  }
  static const ProcessRecord* FindProcess(const Trace& t, const std::string& executable) {
    for (const ProcessRecord& p : t.processes) {
      if (p.executable == executable) return &p;
    }
    return nullptr;
  }

  std::string dir_;
  pid_t init_pid_ = 0;
};

TEST_F(SyscallTracerTest, RecordsFileCreateWriteRenameChmodDelete) {
  fs::create_directory(dir_ + "/sub");
  Trace t = TraceShell("cd " + dir_ +
                       " && echo hi > a.txt && echo more >> a.txt && "
                       "mv a.txt b.txt && chmod 755 b.txt && rm b.txt && rmdir sub && "
                       "echo quiet > /dev/null && cat /etc/hostname > /dev/null");
  const FileRecord* created = FindFile(t, FileOperation::kCreate, dir_ + "/a.txt");
  ASSERT_NE(created, nullptr);
  EXPECT_EQ(created->result >= 0, true);
  EXPECT_EQ(created->mode, 0666u);  // the shell's creation mode, before umask
  const FileRecord* appended = FindFile(t, FileOperation::kWrite, dir_ + "/a.txt");
  ASSERT_NE(appended, nullptr);  // O_CREAT on an existing file is a write
  const FileRecord* renamed = FindFile(t, FileOperation::kRename, dir_ + "/a.txt");
  ASSERT_NE(renamed, nullptr);
  EXPECT_EQ(renamed->new_path, dir_ + "/b.txt");
  EXPECT_EQ(renamed->result, 0);
  const FileRecord* chmodded = FindFile(t, FileOperation::kChmod, dir_ + "/b.txt");
  ASSERT_NE(chmodded, nullptr);
  EXPECT_EQ(chmodded->mode, 0755u);
  EXPECT_NE(FindFile(t, FileOperation::kDelete, dir_ + "/b.txt"), nullptr);
  EXPECT_NE(FindFile(t, FileOperation::kDelete, dir_ + "/sub"), nullptr);
  for (const FileRecord& f : t.files) {
    EXPECT_NE(f.path, "/dev/null");
    EXPECT_NE(f.path, "/etc/hostname");  // read-only opens are not recorded
  }
  EXPECT_FALSE(t.truncated);
}

TEST_F(SyscallTracerTest, ResolvesDirfdsFchmodAndFailedAttempts) {
  Trace t = TracePython(
      "import os\n"
      "d = os.open('" +
      dir_ +
      "', os.O_RDONLY | os.O_DIRECTORY)\n"
      "fd = os.open('c.txt', os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=d)\n"
      "os.fchmod(fd, 0o700)\n"
      "os.rename('c.txt', 'd.txt', src_dir_fd=d, dst_dir_fd=d)\n"
      "try:\n  os.open('/nonexistent-quell-test/x', os.O_WRONLY | os.O_CREAT)\nexcept OSError: "
      "pass\n");
  const FileRecord* created = FindFile(t, FileOperation::kCreate, dir_ + "/c.txt");
  ASSERT_NE(created, nullptr);
  EXPECT_EQ(created->mode, 0600u);
  const FileRecord* chmodded = FindFile(t, FileOperation::kChmod, dir_ + "/c.txt");
  ASSERT_NE(chmodded, nullptr);
  EXPECT_EQ(chmodded->mode, 0700u);
  const FileRecord* renamed = FindFile(t, FileOperation::kRename, dir_ + "/c.txt");
  ASSERT_NE(renamed, nullptr);
  EXPECT_EQ(renamed->new_path, dir_ + "/d.txt");
  const FileRecord* refused = FindFile(t, FileOperation::kCreate, "/nonexistent-quell-test/x");
  ASSERT_NE(refused, nullptr);
  EXPECT_EQ(refused->result, -ENOENT);  // the attempt is recorded with its -errno
}

TEST_F(SyscallTracerTest, RecordsProcessesArgvAndExitStatus) {
  Trace t = TraceShell("/bin/sh -c 'exit 3'; /bin/echo one two > /dev/null; exit 5");
  ASSERT_GE(t.processes.size(), 3u);
  const ProcessRecord& sample = t.processes[0];
  EXPECT_EQ(sample.parent_pid, 0);
  EXPECT_EQ(sample.executable, "/bin/sh");
  EXPECT_EQ(sample.exit_code, 5);
  ASSERT_TRUE(t.sample_exec_ms.has_value());
  EXPECT_GE(*t.sample_exec_ms, 0);
  const ProcessRecord* echo = FindProcess(t, "/bin/echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->argv, (std::vector<std::string>{"/bin/echo", "one", "two"}));
  EXPECT_EQ(echo->parent_pid, sample.pid);
  EXPECT_EQ(echo->exit_code, 0);
  bool saw_exit3 = false;
  for (const ProcessRecord& p : t.processes)
    saw_exit3 |= p.exit_code == 3 && p.executable == "/bin/sh" && p.pid != sample.pid;
  EXPECT_TRUE(saw_exit3);
}

TEST_F(SyscallTracerTest, RecordsSignalsToOthersAndPassesSignalsThrough) {
  Trace t = TraceShell(
      "/bin/sleep 5 & kill -TERM $!; wait; "
      "/usr/bin/python3 -c \"import os, signal\n"
      "signal.signal(signal.SIGUSR1, lambda *a: open('" +
      dir_ +
      "/handled', 'w').close())\n"
      "os.kill(os.getpid(), signal.SIGUSR1)\"");
  ASSERT_EQ(t.signals.size(), 1u);  // the python self-signal is not recorded
  EXPECT_EQ(t.signals[0].signal, SIGTERM);
  EXPECT_EQ(t.signals[0].pid, t.processes[0].pid);
  // The target is the background child (killed before or after its exec of sleep).
  const ProcessRecord* victim = nullptr;
  for (const ProcessRecord& p : t.processes) {
    if (p.pid == t.signals[0].target) victim = &p;
  }
  ASSERT_NE(victim, nullptr);
  EXPECT_EQ(victim->parent_pid, t.processes[0].pid);
  EXPECT_EQ(victim->killed_by, SIGTERM);
  EXPECT_TRUE(fs::exists(dir_ + "/handled"));  // the tracee's own signal reached its handler
}

TEST_F(SyscallTracerTest, RecordsIdentityChangesAndPrivilegedCalls) {
  Trace t = TracePython(
      "import ctypes, os\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "libc.mount(b'none', b'/nonexistent-quell-test/mnt', b'tmpfs', 0, None)\n"
      "libc.ptrace(0, 0, None, None)\n"
      "os.setgroups([4242])\n"
      "os.setresgid(65534, 65534, 65534)\n"
      "os.setuid(65534)\n");
  auto identity = [&](const std::string& call) -> const IdentityChange* {
    for (const IdentityChange& c : t.identity_changes) {
      if (c.call == call) return &c;
    }
    return nullptr;
  };
  ASSERT_NE(identity("setuid"), nullptr);
  EXPECT_EQ(identity("setuid")->ids, std::vector<int64_t>{65534});
  EXPECT_EQ(identity("setuid")->result, 0);
  ASSERT_NE(identity("setresgid"), nullptr);
  EXPECT_EQ(identity("setresgid")->ids, (std::vector<int64_t>{65534, 65534, 65534}));
  ASSERT_NE(identity("setgroups"), nullptr);
  EXPECT_EQ(identity("setgroups")->ids, std::vector<int64_t>{4242});
  const PrivilegedCall* mount = nullptr;
  const PrivilegedCall* traceme = nullptr;
  for (const PrivilegedCall& c : t.privileged_calls) {
    if (c.call == "mount") mount = &c;
    if (c.call == "ptrace") traceme = &c;
  }
  ASSERT_NE(mount, nullptr);
  EXPECT_NE(mount->detail.find("target=/nonexistent-quell-test/mnt"), std::string::npos);
  EXPECT_NE(mount->detail.find("type=tmpfs"), std::string::npos);
  EXPECT_LT(mount->result, 0);
  ASSERT_NE(traceme, nullptr);
  EXPECT_EQ(traceme->detail, "PTRACE_TRACEME");
  EXPECT_LT(traceme->result, 0);  // already traced by us
}

TEST_F(SyscallTracerTest, RecordsConnections) {
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener.get(), 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  const std::string unix_path = dir_ + "/u.sock";
  UniqueFd unix_listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::snprintf(un.sun_path, sizeof un.sun_path, "%s", unix_path.c_str());
  ASSERT_EQ(bind(unix_listener.get(), reinterpret_cast<sockaddr*>(&un), sizeof un), 0);
  ASSERT_EQ(listen(unix_listener.get(), 4), 0);

  Trace t = TracePython(
      "import socket\n"
      "s = socket.create_connection(('127.0.0.1', " +
      std::to_string(port) +
      "))\n"
      "s.sendall(b'hello')\n"
      "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
      "for i in range(50): u.sendto(b'x', ('127.0.0.1', 9))\n"
      "x = socket.socket(socket.AF_UNIX)\n"
      "x.connect('" +
      unix_path + "')\n");
  int tcp = 0, udp = 0, unix_count = 0;
  for (const ConnectRecord& c : t.connections) {
    if (c.family == "inet" && c.protocol == "tcp" && c.address == "127.0.0.1" && c.port == port) {
      ++tcp;
      EXPECT_EQ(c.result, 0);
    }
    if (c.family == "inet" && c.protocol == "udp" && c.port == 9) ++udp;
    if (c.family == "unix" && c.address == unix_path) ++unix_count;
  }
  EXPECT_EQ(tcp, 1);
  EXPECT_EQ(udp, 1);  // 50 datagrams to one destination: one record
  EXPECT_EQ(unix_count, 1);
}

TEST_F(SyscallTracerTest, FollowsThreads) {
  Trace t = TracePython(
      "import threading\n"
      "def w(i): open('" +
      dir_ +
      "/t%d' % i, 'w').write('x')\n"
      "ts = [threading.Thread(target=w, args=(i,)) for i in range(3)]\n"
      "[x.start() for x in ts]; [x.join() for x in ts]\n");
  ASSERT_EQ(t.processes.size(), 1u);  // threads are not processes
  for (int i = 0; i < 3; ++i) {
    const FileRecord* f = FindFile(t, FileOperation::kCreate, dir_ + "/t" + std::to_string(i));
    ASSERT_NE(f, nullptr) << i;
    EXPECT_EQ(f->pid, t.processes[0].pid);  // recorded under the process, not the thread
  }
  EXPECT_EQ(t.processes[0].exit_code, 0);
}

TEST_F(SyscallTracerTest, WaitsForAChildThatOutlivesTheSample) {
  auto start = std::chrono::steady_clock::now();
  Trace t = TraceShell("(/bin/sleep 0.3; echo late > " + dir_ + "/late) & exit 0");
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(300));
  EXPECT_NE(FindFile(t, FileOperation::kCreate, dir_ + "/late"), nullptr);
  EXPECT_EQ(t.processes[0].exit_code, 0);
}

TEST_F(SyscallTracerTest, GroupStopStopsUntilContinued) {
  // The child stops itself; while it is stopped it must not run (job control works under the
  // tracer), and SIGCONT must resume it.
  Trace t = TraceShell("/bin/sh -c 'kill -STOP $$; echo resumed > " + dir_ +
                       "/resumed' & "
                       "sleep 0.3; test -e " +
                       dir_ + "/resumed && echo > " + dir_ +
                       "/early; "
                       "kill -CONT $!; wait");
  EXPECT_FALSE(fs::exists(dir_ + "/early"));
  EXPECT_TRUE(fs::exists(dir_ + "/resumed"));
  EXPECT_NE(FindFile(t, FileOperation::kCreate, dir_ + "/resumed"), nullptr);
}

TEST_F(SyscallTracerTest, QuietInitIsNotRecordedAndItsFirstChildIsTheSample) {
  Trace t = TraceArgv({"/bin/sh", "-c", "echo x > " + dir_ + "/by-sample; exit 4"}, {}, true);
  EXPECT_TRUE(fs::exists(dir_ + "/init-file"));
  EXPECT_EQ(FindFile(t, FileOperation::kCreate, dir_ + "/init-file"), nullptr);
  EXPECT_NE(FindFile(t, FileOperation::kCreate, dir_ + "/by-sample"), nullptr);
  ASSERT_FALSE(t.processes.empty());
  EXPECT_NE(t.processes[0].pid, init_pid_);
  EXPECT_EQ(t.processes[0].parent_pid, 0);
  EXPECT_EQ(t.processes[0].executable, "/bin/sh");
  EXPECT_EQ(t.processes[0].exit_code, 4);
  for (const ProcessRecord& p : t.processes) EXPECT_NE(p.pid, init_pid_);
  EXPECT_TRUE(t.sample_exec_ms.has_value());
}

TEST_F(SyscallTracerTest, CapsRecordsAndSaysSo) {
  TracerLimits limits;
  limits.max_records = 5;
  Trace t = TraceArgv(
      {"/bin/sh", "-c", "cd " + dir_ + " && for i in 1 2 3 4 5 6 7 8 9 10; do : > f$i; done"},
      limits);
  EXPECT_TRUE(t.truncated);
  EXPECT_LE(t.processes.size() + t.files.size(), 5u);
  EXPECT_TRUE(fs::exists(dir_ + "/f10"));  // the sample ran to the end regardless
}

}  // namespace
}  // namespace quell::sandbox
