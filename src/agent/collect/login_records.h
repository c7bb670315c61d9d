// Login records from utmp(5)-format files: /run/utmp (who is logged in now), /var/log/wtmp
// (login, logout and boot history) and /var/log/btmp (failed logins). Used by the
// investigation package's "Logins" topic.
//
// Layout: glibc's struct utmp, 384 bytes per record on x86_64 and aarch64 (32-bit ut_tv so
// 32- and 64-bit programs share the files). Files are read record by record; a partial record
// at the end (a writer caught mid-append, or a truncated copy) is ignored, never an error.
// String fields are fixed-size and not necessarily NUL-terminated; they are the bytes an
// attacker may have written, so displays must escape them.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace quell::agent::collect {

struct LoginRecord {
  int16_t type_code = 0;
  std::string type;     // "USER_PROCESS", "DEAD_PROCESS", "BOOT_TIME", ... or "UNKNOWN(n)"
  std::string user;     // ut_user ("reboot" for BOOT_TIME, "shutdown" for RUN_LVL in wtmp)
  std::string line;     // ut_line: tty ("pts/0") or "~"
  std::string host;     // ut_host: remote host, or the kernel version for BOOT_TIME
  std::string address;  // ut_addr_v6 when set: "192.0.2.4" or an IPv6 address; else ""
  pid_t pid = 0;
  UnixMillis time = 0;
};

// The name of a ut_type value.
std::string LoginTypeName(int16_t type);

// Decodes whole records from `bytes`; trailing bytes short of a record are ignored.
std::vector<LoginRecord> ParseLoginRecords(std::string_view bytes);

// The last `max_records` records of a utmp-format file (all when 0), oldest first, reading
// only that tail. `total_records`, when given, receives how many whole records the file holds.
// NotFound if the file does not exist.
Result<std::vector<LoginRecord>> ReadLoginRecords(const std::string& path, size_t max_records = 0,
                                                  size_t* total_records = nullptr);

nlohmann::json LoginRecordsToJson(const std::vector<LoginRecord>& records);

// A fixed-width table like last(1), header first: time (ISO 8601, UTC), type, user, line,
// host, address, pid; in the given order. EMPTY records are left out.
std::string LoginRecordsTableText(const std::vector<LoginRecord>& records);

}  // namespace quell::agent::collect
