// Reconnect delays: exponential backoff with full jitter — each delay is uniform in
// [0, min(max, initial * 2^attempt)] — so a fleet that lost its server does not come back in
// lockstep. The random source is injected so the schedule is unit-tested. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace quell::agent {

class Backoff {
 public:
  // Returns a uniformly distributed value in [0, bound].
  using Random = std::function<uint64_t(uint64_t bound)>;

  // REQUIRES: 0 < initial <= max.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, Random random);

  // The delay before the next attempt; each call doubles the ceiling until it reaches max.
  std::chrono::milliseconds Next();
  // After a connection the server accepted: start again from `initial`.
  void Reset() { attempt_ = 0; }
  std::chrono::milliseconds max() const { return max_; }

  // A Random backed by a std::mt19937_64 seeded from std::random_device.
  static Random SystemRandom();

 private:
  const std::chrono::milliseconds initial_;
  const std::chrono::milliseconds max_;
  Random random_;
  uint32_t attempt_ = 0;
};

}  // namespace quell::agent
