#include "agent/collect/login_records.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <utmp.h>

#include <cstring>
#include <fstream>

#include "common/testing/temp_dir.h"

namespace quell::agent::collect {
namespace {

std::string Record(short type, std::string_view user, std::string_view line, std::string_view host,
                   pid_t pid, int32_t sec, const char* ipv4 = nullptr) {
  struct utmp u;
  std::memset(&u, 0, sizeof u);
  u.ut_type = type;
  u.ut_pid = pid;
  std::memcpy(u.ut_user, user.data(), std::min(user.size(), sizeof u.ut_user));
  std::memcpy(u.ut_line, line.data(), std::min(line.size(), sizeof u.ut_line));
  std::memcpy(u.ut_host, host.data(), std::min(host.size(), sizeof u.ut_host));
  u.ut_tv.tv_sec = sec;
  u.ut_tv.tv_usec = 250000;
  if (ipv4 != nullptr) ::inet_pton(AF_INET, ipv4, &u.ut_addr_v6[0]);
  return std::string(reinterpret_cast<const char*>(&u), sizeof u);
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(LoginRecordsTest, DecodesFields) {
  std::string bytes = Record(BOOT_TIME, "reboot", "~", "6.1.0-13-amd64", 0, 1700000000) +
                      Record(USER_PROCESS, "alice", "pts/0", "192.0.2.4", 4242, 1700000100, "192.0.2.4") +
                      Record(DEAD_PROCESS, "", "pts/0", "", 4242, 1700000200);
  auto r = ParseLoginRecords(bytes);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].type, "BOOT_TIME");
  EXPECT_EQ(r[0].host, "6.1.0-13-amd64");
  EXPECT_EQ(r[1].type, "USER_PROCESS");
  EXPECT_EQ(r[1].user, "alice");
  EXPECT_EQ(r[1].line, "pts/0");
  EXPECT_EQ(r[1].address, "192.0.2.4");
  EXPECT_EQ(r[1].pid, 4242);
  EXPECT_EQ(r[1].time, 1700000100250);
  EXPECT_EQ(r[2].type, "DEAD_PROCESS");
  EXPECT_EQ(r[2].address, "");
}

TEST(LoginRecordsTest, FullWidthFieldsWithoutNul) {
  const std::string user(32, 'u');  // ut_user is exactly 32 bytes, no room for a NUL
  auto r = ParseLoginRecords(Record(USER_PROCESS, user, "tty1", "", 1, 0));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].user, user);
  EXPECT_EQ(r[0].line, "tty1");
}

TEST(LoginRecordsTest, Ipv6AddressAndUnknownType) {
  std::string bytes = Record(99, "x", "", "", 0, 0);
  struct utmp u;
  std::memcpy(&u, bytes.data(), sizeof u);
  ::inet_pton(AF_INET6, "2001:db8::7", u.ut_addr_v6);
  auto r = ParseLoginRecords(std::string_view(reinterpret_cast<const char*>(&u), sizeof u));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].address, "2001:db8::7");
  EXPECT_EQ(r[0].type, "UNKNOWN(99)");
}

TEST(LoginRecordsTest, ReadsTailAndToleratesTruncatedRecord) {
  testing::TempDir dir;
  std::string bytes;
  for (int i = 0; i < 5; ++i) bytes += Record(USER_PROCESS, "u" + std::to_string(i), "pts/1", "", i, i);
  bytes += Record(USER_PROCESS, "partial", "pts/2", "", 9, 9).substr(0, 100);
  WriteBytes(dir / "wtmp", bytes);

  size_t total = 0;
  auto all = ReadLoginRecords(dir / "wtmp", 0, &total);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 5u);
  EXPECT_EQ(total, 5u);
  EXPECT_EQ(all->back().user, "u4");

  auto tail = ReadLoginRecords(dir / "wtmp", 2);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].user, "u3");
  EXPECT_EQ((*tail)[1].user, "u4");

  auto missing = ReadLoginRecords(dir / "btmp");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(LoginRecordsTest, TableEscapesAndSkipsEmpty) {
  std::string bytes = Record(EMPTY, "", "", "", 0, 0) +
                      Record(USER_PROCESS, "root", "pts/3", "evil\nhost", 7, 1700000000, "198.51.100.9");
  auto r = ParseLoginRecords(bytes);
  EXPECT_EQ(LoginRecordsTableText(r),
            "TIME                      TYPE          USER  LINE   HOST          ADDRESS       PID\n"
            "2023-11-14T22:13:20.250Z  USER_PROCESS  root  pts/3  evil\\x0ahost  198.51.100.9  7\n");
  nlohmann::json j = LoginRecordsToJson(r);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1]["host"], "evil\nhost");
  EXPECT_EQ(j[1]["time"], "2023-11-14T22:13:20.250Z");
}

}  // namespace
}  // namespace quell::agent::collect
