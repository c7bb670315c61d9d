#include "agent/live/live_output_stream.h"

#include <algorithm>

#include "agent/live/live_shell.h"
#include "common/utf8.h"

namespace quell::agent::live {
namespace {

std::string Repaired(std::string_view text) { return ValidUtf8(text, InvalidUtf8::kHexEscape); }

}  // namespace

LiveOutputStream::LiveOutputStream(uint64_t max_bytes, SendFn send)
    : max_bytes_(max_bytes), send_(std::move(send)) {}

void LiveOutputStream::Write(std::string_view text) {
  std::lock_guard lock(mu_);
  if (cut_ || text.empty()) return;
  if (total_ + text.size() > max_bytes_) {
    text = text.substr(0, max_bytes_ - total_);
    cut_ = true;
  }
  total_ += text.size();
  std::string piece = carry_ + std::string(text);
  const size_t keep = cut_ ? 0 : IncompleteUtf8Tail(piece);
  carry_ = piece.substr(piece.size() - keep);
  piece.resize(piece.size() - keep);
  if (pending_.empty()) pending_since_ = Clock::now();
  pending_ += Repaired(piece);
  if (cut_) pending_ += "\n[output cut at " + std::to_string(max_bytes_) + " bytes]\n";
  SendPending(false);
}

void LiveOutputStream::FlushOlderThan(std::chrono::milliseconds age, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (!pending_.empty() && pending_since_ <= now - age) SendPending(true);
}

void LiveOutputStream::Finish() {
  std::lock_guard lock(mu_);
  pending_ += Repaired(carry_);
  carry_.clear();
  SendPending(true);
}

void LiveOutputStream::SendPending(bool all) {
  while (!pending_.empty() && (all || pending_.size() >= kMaxLiveChunkBytes)) {
    const size_t n = std::max<size_t>(1, Utf8ChunkSize(pending_, kMaxLiveChunkBytes));
    send_(pending_.substr(0, n));
    pending_.erase(0, n);
  }
}

}  // namespace quell::agent::live
