// Shared by the live shell's source files; not part of its interface.
#pragma once

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "agent/live/live_shell.h"

namespace quell::agent::live {

struct LiveShell::Ctx {
  const LiveCommandRequest& req;
  std::stop_token stop;
  const std::function<void(std::string_view)>& out;
  LiveCommandOutcome& outcome;
  std::string cwd;  // the session's cwd when the command started

  const std::vector<std::string>& argv() const { return req.argv; }
  void Print(std::string_view text) const { out(text); }
  void PrintJson(const nlohmann::json& j) const {
    out(j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
};

namespace shell_internal {

// Columns padded to their widest cell; the last column is not padded.
std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows);
// "-rwxr-xr-x", "drwxrwxrwt", "lrwxrwxrwx", with s/S/t/T.
std::string Permissions(mode_t mode);
std::string UserName(uid_t uid);
std::string GroupName(gid_t gid);
std::string TimeIso(const struct timespec& ts);
// Control characters and invalid UTF-8 in names shown as text become \xNN.
std::string Printable(std::string_view s);
bool IsLowerHex64(const std::string& s);
// InvalidArgument "usage: <usage>" unless min <= argv.size()-1 <= max.
Status CheckArgCount(const std::vector<std::string>& argv, size_t min, size_t max,
                     const std::string& usage);

}  // namespace shell_internal
}  // namespace quell::agent::live
