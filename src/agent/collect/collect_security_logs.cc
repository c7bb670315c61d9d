// "Security logs": the newest part of the authentication logs (/var/log/auth.log, its first
// rotation auth.log.1, and /var/log/secure on Red Hat systems) — at most the last 4 MiB of each,
// less when the package's caps leave less, starting at a line boundary and marked when cut —
// plus logs.json saying what was kept of each. With run_commands, the journal's entries of
// sshd, sudo, su, login, passwd, useradd and usermod.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "agent/collect/collect_files.h"
#include "agent/collect/collectors.h"
#include "common/unique_fd.h"
#include "common/status.h"

namespace quell::agent::collect {
namespace {

constexpr char kTopic[] = "Security logs";
constexpr uint64_t kTailBytes = 4u << 20;
constexpr uint64_t kMarkerReserve = 256;  // room for the "[quell: the last ...]" line

struct Tail {
  std::string text;
  uint64_t file_size = 0;
  uint64_t offset = 0;  // where the kept text starts in the file
};

// The last `max_bytes` of a regular file, from the first line that starts inside them.
Result<Tail> ReadTail(const std::string& path, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (!fd) {
    if (errno == ELOOP) return FailedPrecondition("is a symbolic link (not followed)");
    return ErrnoStatus("open");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat");
  if (!S_ISREG(st.st_mode)) return FailedPrecondition("is not a regular file");
  Tail t;
  t.file_size = static_cast<uint64_t>(st.st_size);
  t.offset = t.file_size > max_bytes ? t.file_size - max_bytes : 0;
  t.text.resize(t.file_size - t.offset);
  size_t got = 0;
  while (got < t.text.size()) {
    ssize_t n = ::pread(fd.get(), t.text.data() + got, t.text.size() - got,
                        static_cast<off_t>(t.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read");
    if (n == 0) break;  // truncated (rotated) while being read
    got += static_cast<size_t>(n);
  }
  t.text.resize(got);
  if (t.offset > 0) {
    size_t nl = t.text.find('\n');
    const size_t drop = nl == std::string::npos ? t.text.size() : nl + 1;
    t.text.erase(0, drop);
    t.offset += drop;
  }
  return t;
}

void CollectLogFiles(const CollectSources& s, PackageStaging& out, nlohmann::json& index) {
  for (const char* host : {"/var/log/auth.log", "/var/log/auth.log.1", "/var/log/secure", "/var/log/secure.1"}) {
    if (out.Exhausted()) return;
    const std::string path = files::Under(s, host);
    if (!files::LStat(path)) continue;
    const uint64_t left = out.limits().max_total_bytes > out.total_bytes()
                              ? out.limits().max_total_bytes - out.total_bytes()
                              : 0;
    const uint64_t budget = std::min({kTailBytes, out.limits().max_artifact_bytes, left});
    if (budget <= kMarkerReserve) {
      out.RecordFailure(kTopic, host, "not collected: the package size limit is reached");
      return;
    }
    auto tail = ReadTail(path, budget - kMarkerReserve);
    if (!tail.ok()) {
      out.RecordFailure(kTopic, host, tail.status().message());
      continue;
    }
    std::string text = std::move(tail->text);
    const bool cut = tail->offset > 0;
    if (cut) {
      text = "[quell: the last " + std::to_string(tail->file_size - tail->offset) + " of " +
             std::to_string(tail->file_size) + " bytes; earlier lines are not included]\n" + text;
    }
    const bool added = out.AddText(kTopic, files::CopyName(host), text, host);
    index.push_back({{"source", host},
                     {"collected", added ? nlohmann::json(files::CopyName(host)) : nlohmann::json(nullptr)},
                     {"file_bytes", tail->file_size},
                     {"tail", cut},
                     {"from_offset", tail->offset}});
  }
}

void CollectJournal(const CollectSources& s, PackageStaging& out) {
  const std::vector<std::string> argv = {"journalctl", "--no-pager", "-o", "short-iso", "-n", "20000",
                                         "_COMM=sshd", "_COMM=sudo", "_COMM=su", "_COMM=login",
                                         "_COMM=passwd", "_COMM=useradd", "_COMM=usermod"};
  if (!files::LStat(files::Under(s, "/var/log/journal")) && !files::LStat(files::Under(s, "/run/log/journal"))) {
    out.RecordFailure(kTopic, "systemd journal",
                      "no journal: neither /var/log/journal nor /run/log/journal exists");
    return;
  }
  const size_t failures_before = out.failures().size();
  if (!out.AddCommandOutput(kTopic, "journal_auth.txt", argv) && !out.Exhausted()) {
    std::string reason = "no journal";
    if (out.failures().size() > failures_before) reason += ": " + out.failures().back().reason;
    out.RecordFailure(kTopic, "systemd journal", reason);
  }
}

}  // namespace

void CollectSecurityLogs(const CollectSources& sources, PackageStaging& out) {
  nlohmann::json index = nlohmann::json::array();
  CollectLogFiles(sources, out, index);
  if (index.empty() && !out.Exhausted()) {
    out.RecordFailure(kTopic, "/var/log/auth.log, /var/log/secure", "no authentication log file found");
  }
  if (!index.empty()) out.AddJson(kTopic, "logs.json", {{"logs", index}});
  if (sources.run_commands && !out.Exhausted()) CollectJournal(sources, out);
}

}  // namespace quell::agent::collect
