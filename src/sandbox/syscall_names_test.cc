#include "sandbox/syscall_names.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

#include <gtest/gtest.h>

#include "sandbox/tracee_memory.h"

namespace quell::sandbox {
namespace {

template <typename T>
std::string_view Bytes(const T& v, size_t len = sizeof(T)) {
  return {reinterpret_cast<const char*>(&v), len};
}

TEST(SyscallNamesTest, ClassifiesByNumber) {
  EXPECT_EQ(ClassifySyscall(SYS_openat), SyscallClass::kFile);
  EXPECT_EQ(ClassifySyscall(SYS_execve), SyscallClass::kExec);
  EXPECT_EQ(ClassifySyscall(SYS_setresuid), SyscallClass::kIdentity);
  EXPECT_EQ(ClassifySyscall(SYS_connect), SyscallClass::kConnect);
  EXPECT_EQ(ClassifySyscall(SYS_mount), SyscallClass::kPrivileged);
  EXPECT_EQ(ClassifySyscall(SYS_finit_module), SyscallClass::kPrivileged);
  EXPECT_EQ(ClassifySyscall(SYS_tgkill), SyscallClass::kSignal);
  EXPECT_EQ(ClassifySyscall(SYS_read), SyscallClass::kIgnored);
  EXPECT_EQ(SyscallName(SYS_kexec_load), "kexec_load");
  EXPECT_EQ(SyscallName(SYS_read), "syscall_0");
}

TEST(SyscallNamesTest, DecodesInetAndInet6) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(4444);
  inet_pton(AF_INET, "203.0.113.7", &in.sin_addr);
  auto a = DecodeSockaddr(Bytes(in));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, "inet");
  EXPECT_EQ(a->address, "203.0.113.7");
  EXPECT_EQ(a->port, 4444);

  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(443);
  inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
  auto b = DecodeSockaddr(Bytes(in6));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->family, "inet6");
  EXPECT_EQ(b->address, "2001:db8::1");
  EXPECT_EQ(b->port, 443);
}

TEST(SyscallNamesTest, DecodesUnixPathAndAbstractName) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, "/run/x.sock");
  auto a = DecodeSockaddr(Bytes(un, offsetof(sockaddr_un, sun_path) + 12));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, "unix");
  EXPECT_EQ(a->address, "/run/x.sock");

  sockaddr_un abs{};
  abs.sun_family = AF_UNIX;
  std::memcpy(abs.sun_path, "\0name", 5);
  auto b = DecodeSockaddr(Bytes(abs, offsetof(sockaddr_un, sun_path) + 5));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->address, "@name");
}

TEST(SyscallNamesTest, RejectsTruncatedAndOtherFamilies) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  EXPECT_FALSE(DecodeSockaddr(Bytes(in, 4)));
  EXPECT_FALSE(DecodeSockaddr(""));
  sockaddr sa{};
  sa.sa_family = AF_NETLINK;
  EXPECT_FALSE(DecodeSockaddr(Bytes(sa)));
}

TEST(TraceePathTest, JoinsAndTidies) {
  EXPECT_EQ(JoinTraceePath("/analysis", "a.txt"), "/analysis/a.txt");
  EXPECT_EQ(JoinTraceePath("/analysis", "./sub//b"), "/analysis/sub/b");
  EXPECT_EQ(JoinTraceePath("/analysis", "/etc/x"), "/etc/x");
  EXPECT_EQ(JoinTraceePath("/analysis", ""), "/analysis");
  EXPECT_EQ(JoinTraceePath("/analysis", "../x"), "/analysis/../x");  // symlinks: ".." is kept
}

TEST(TraceeMemoryTest, ReadsOwnMemoryAndSurvivesBadPointers) {
  // process_vm_readv on ourselves needs no privilege.
  const char text[] = "hello tracee";
  EXPECT_EQ(ReadTraceeString(getpid(), reinterpret_cast<uint64_t>(text), 64), "hello tracee");
  EXPECT_EQ(ReadTraceeString(getpid(), reinterpret_cast<uint64_t>(text), 5), "hello");
  EXPECT_EQ(ReadTraceeString(getpid(), 0, 64), std::nullopt);
  EXPECT_EQ(ReadTraceeString(getpid(), 8, 64), std::nullopt);  // unmapped
  const char* argv[] = {"sh", "-c", "echo hi", nullptr};
  EXPECT_EQ(ReadTraceeArgv(getpid(), reinterpret_cast<uint64_t>(argv), 64, 4096),
            (std::vector<std::string>{"sh", "-c", "echo hi"}));
  EXPECT_EQ(ReadTraceeArgv(getpid(), reinterpret_cast<uint64_t>(argv), 2, 4096),
            (std::vector<std::string>{"sh", "-c"}));
}

}  // namespace
}  // namespace quell::sandbox
