#include "cli/action_progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "cli/live_render.h"

namespace quell::cli {
namespace {

void DrawBar(std::ostream& err, int percent, const std::string& text, bool tty) {
  constexpr int kWidth = 30;
  const int filled = std::clamp(percent, 0, 100) * kWidth / 100;
  std::string line = "[" + std::string(static_cast<size_t>(filled), '#') +
                     std::string(static_cast<size_t>(kWidth - filled), '.') + "] " +
                     std::to_string(percent) + "% " + text;
  if (tty) {
    err << "\r\033[K" << line << std::flush;
  } else {
    err << line << "\n";
  }
}

std::string MiB(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

bool IsFinalActionStatus(const std::string& status) {
  return status == "Succeeded" || status == "Failed" || status == "Cancelled" ||
         status == "TimeOut" || status == "Rejected" || status == "Expired";
}

int FollowActionProgress(CliContext& ctx, const std::string& action_id, int timeout_seconds,
                         const std::string& what, nlohmann::json& action) {
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  std::string last_drawn;
  for (;;) {
    CallResult r = CallApi(ctx, "GET", "/api/machineactions/" + UrlEncode(action_id));
    if (r.exit_code != 0) {
      if (tty && !last_drawn.empty()) ctx.err << "\n";
      return r.exit_code;
    }
    action = r.body;
    const std::string status = Field(action, "status");
    const int percent = action.value("progressPercent", 0);
    const std::string message =
        action.contains("statusMessage") && action["statusMessage"].is_string()
            ? EscapeControls(action["statusMessage"].get<std::string>())  // a device's words
            : "";
    const std::string key = std::to_string(percent) + status + message;
    if (key != last_drawn) {
      DrawBar(ctx.err, status == "Succeeded" ? 100 : percent,
              status + (message.empty() ? "" : " - " + message), tty);
      last_drawn = key;
    }
    if (IsFinalActionStatus(status)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      if (tty) ctx.err << "\n";
      ctx.err << "error: the " << what << " did not finish within " << timeout_seconds
              << " s; it continues on the device (quell actions show " << action_id << ")\n";
      return kExitApiError;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (tty) ctx.err << "\n";
  return 0;
}

ByteProgress::ByteProgress(CliContext& ctx, std::string label)
    : ctx_(ctx), label_(std::move(label)), tty_(::isatty(STDERR_FILENO) == 1) {}

void ByteProgress::Update(uint64_t received, uint64_t total) {
  const int percent = total == 0 ? 0 : static_cast<int>(100 * received / total);
  const uint64_t mib = received >> 20;
  // Redraw on a visible change only: a percent on a terminal, each 10 % in a log.
  if (tty_ ? (percent == last_percent_ && mib == last_mib_)
           : (percent / 10 == last_percent_ / 10 && last_percent_ >= 0)) {
    return;
  }
  last_percent_ = percent;
  last_mib_ = mib;
  DrawBar(ctx_.err, percent,
          label_ + " " + MiB(received) + (total == 0 ? "" : " of " + MiB(total)), tty_);
}

void ByteProgress::Done() {
  if (tty_ && last_percent_ >= 0) ctx_.err << "\n";
}

}  // namespace quell::cli
