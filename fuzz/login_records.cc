// utmp/wtmp/btmp bytes through the investigation package's login record reader: a failed
// login's user name and host are chosen by whoever tries to log in, and the files can be
// truncated or corrupt. Parsing never reads out of bounds, and the table text is built.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/collect/login_records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto records = quell::agent::collect::ParseLoginRecords(bytes);
  if (records.size() > size / 384) std::abort();
  (void)quell::agent::collect::LoginRecordsTableText(records);
  (void)quell::agent::collect::LoginRecordsToJson(records).dump();
  return 0;
}
