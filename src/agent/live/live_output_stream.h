// The output of one live command on its way to the server, as LiveOutput text chunks.
//
// What the command writes is repaired to valid UTF-8 (LiveOutput.text is a proto3 string;
// bytes that are not UTF-8 become "\xNN"), cut at `max_bytes` with a note, and sent in chunks
// of at most kMaxLiveChunkBytes that never split a character. A full chunk leaves at once;
// a smaller remainder waits a little for more (so `ls` of a large directory is a few messages,
// not thousands) until someone calls FlushOlderThan — the session host's timer does, so a
// long script's or findfile's output is seen while it runs, not when it ends.
//
// Thread-safety: Write (the command's thread), FlushOlderThan (the timer) and Finish may be
// called concurrently; chunks leave in order, one send at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace quell::agent::live {

class LiveOutputStream {
 public:
  using Clock = std::chrono::steady_clock;
  using SendFn = std::function<void(std::string chunk)>;

  LiveOutputStream(uint64_t max_bytes, SendFn send);

  void Write(std::string_view text);
  // Sends what is pending if it has waited since before `now - age`.
  void FlushOlderThan(std::chrono::milliseconds age, Clock::time_point now = Clock::now());
  // Sends everything, including a sequence the command left unfinished (as "\xNN").
  void Finish();

 private:
  void SendPending(bool all);  // REQUIRES: mu_ held

  const uint64_t max_bytes_;
  const SendFn send_;
  std::mutex mu_;
  std::string pending_;  // valid UTF-8 not yet sent
  std::string carry_;    // the start of a sequence whose remaining bytes may still come
  Clock::time_point pending_since_{};
  uint64_t total_ = 0;
  bool cut_ = false;
};

}  // namespace quell::agent::live
