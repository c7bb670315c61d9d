// Time as Quell sees it: milliseconds since the Unix epoch, from an injectable clock so that
// timeouts and expiry are tested without sleeping.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace quell {

using UnixMillis = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixMillis Now() const = 0;
};

// The wall clock. Thread-safe.
class SystemClock final : public Clock {
 public:
  UnixMillis Now() const override;
  static SystemClock& Instance();
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(UnixMillis start = 1'700'000'000'000) : now_(start) {}
  UnixMillis Now() const override { return now_.load(); }
  void Advance(UnixMillis ms) { now_ += ms; }
  void Set(UnixMillis ms) { now_ = ms; }

 private:
  std::atomic<UnixMillis> now_;
};

// "2026-11-26T23:01:37.123Z" — the UTC form the REST API uses for every DateTimeOffset.
std::string FormatIso8601(UnixMillis t);

// Parses the form above, with or without fractional seconds; nullopt if malformed.
std::optional<UnixMillis> ParseIso8601(std::string_view text);

}  // namespace quell
