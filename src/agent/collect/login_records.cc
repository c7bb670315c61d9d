#include "agent/collect/login_records.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utmp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "agent/collect/process_table.h"
#include "common/unique_fd.h"

namespace quell::agent::collect {
namespace {

// The on-disk record: the files written by login, sshd and systemd on this architecture.
static_assert(sizeof(struct utmp) == 384, "utmp records are 384 bytes on this ABI");
constexpr size_t kRecordSize = sizeof(struct utmp);

template <size_t N>
std::string FixedField(const char (&field)[N]) {
  return std::string(field, ::strnlen(field, N));
}

std::string Address(const int32_t (&v6)[4]) {
  if (v6[0] == 0 && v6[1] == 0 && v6[2] == 0 && v6[3] == 0) return {};
  char text[INET6_ADDRSTRLEN];
  // login(3) stores an IPv4 address in the first word and zeroes the rest.
  const bool v4 = v6[1] == 0 && v6[2] == 0 && v6[3] == 0;
  if (::inet_ntop(v4 ? AF_INET : AF_INET6, v6, text, sizeof text) == nullptr) return {};
  return text;
}

}  // namespace

std::string LoginTypeName(int16_t type) {
  static constexpr const char* kNames[] = {"EMPTY",        "RUN_LVL",       "BOOT_TIME",
                                           "NEW_TIME",     "OLD_TIME",      "INIT_PROCESS",
                                           "LOGIN_PROCESS", "USER_PROCESS", "DEAD_PROCESS",
                                           "ACCOUNTING"};
  if (type >= 0 && static_cast<size_t>(type) < std::size(kNames)) return kNames[type];
  return "UNKNOWN(" + std::to_string(type) + ")";
}

std::vector<LoginRecord> ParseLoginRecords(std::string_view bytes) {
  std::vector<LoginRecord> out;
  out.reserve(bytes.size() / kRecordSize);
  for (size_t off = 0; off + kRecordSize <= bytes.size(); off += kRecordSize) {
    struct utmp u;
    std::memcpy(&u, bytes.data() + off, kRecordSize);  // the buffer need not be aligned
    LoginRecord r;
    r.type_code = u.ut_type;
    r.type = LoginTypeName(u.ut_type);
    r.user = FixedField(u.ut_user);
    r.line = FixedField(u.ut_line);
    r.host = FixedField(u.ut_host);
    r.address = Address(u.ut_addr_v6);
    r.pid = u.ut_pid;
    r.time = static_cast<UnixMillis>(u.ut_tv.tv_sec) * 1000 + u.ut_tv.tv_usec / 1000;
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<LoginRecord>> ReadLoginRecords(const std::string& path, size_t max_records,
                                                  size_t* total_records) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat " + path);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + " is not a regular file");
  const size_t count = static_cast<size_t>(st.st_size) / kRecordSize;
  const size_t first = max_records != 0 && count > max_records ? count - max_records : 0;
  if (total_records != nullptr) *total_records = count;

  // Only the records counted above: a writer appending meanwhile does not grow the read.
  std::string bytes((count - first) * kRecordSize, '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::pread(fd.get(), bytes.data() + got, bytes.size() - got,
                        static_cast<off_t>(first * kRecordSize + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path);
    }
    if (n == 0) break;  // truncated meanwhile: keep the whole records read so far
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);
  return ParseLoginRecords(bytes);
}

nlohmann::json LoginRecordsToJson(const std::vector<LoginRecord>& records) {
  nlohmann::json out = nlohmann::json::array();
  for (const LoginRecord& r : records) {
    out.push_back({{"type", r.type},
                   {"user", ValidUtf8(r.user)},
                   {"line", ValidUtf8(r.line)},
                   {"host", ValidUtf8(r.host)},
                   {"address", r.address},
                   {"pid", r.pid},
                   {"time", FormatIso8601(r.time)}});
  }
  return out;
}

std::string LoginRecordsTableText(const std::vector<LoginRecord>& records) {
  std::vector<std::array<std::string, 7>> rows;
  rows.push_back({"TIME", "TYPE", "USER", "LINE", "HOST", "ADDRESS", "PID"});
  for (const LoginRecord& r : records) {
    if (r.type_code == EMPTY) continue;
    rows.push_back({FormatIso8601(r.time), r.type, EscapeForText(r.user), EscapeForText(r.line),
                    EscapeForText(r.host), r.address, std::to_string(r.pid)});
  }
  std::array<size_t, 7> width{};
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      out += row[c];
      if (c + 1 < row.size()) out.append(width[c] - row[c].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace quell::agent::collect
