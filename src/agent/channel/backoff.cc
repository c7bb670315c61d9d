#include "agent/channel/backoff.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <random>

namespace quell::agent {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, Random random)
    : initial_(initial), max_(std::max(initial, max)), random_(std::move(random)) {}

std::chrono::milliseconds Backoff::Next() {
  // Doubling stops well before overflow: 2^32 ms is ~50 days, far above any sane max.
  const uint32_t shift = std::min<uint32_t>(attempt_, 32);
  const uint64_t ceiling = std::min<uint64_t>(static_cast<uint64_t>(initial_.count()) << shift,
                                              static_cast<uint64_t>(max_.count()));
  if (attempt_ < 32) ++attempt_;
  return std::chrono::milliseconds(std::min(random_(ceiling), ceiling));
}

Backoff::Random Backoff::SystemRandom() {
  struct State {
    std::mutex mu;
    std::mt19937_64 engine{std::random_device{}()};
  };
  auto state = std::make_shared<State>();
  return [state](uint64_t bound) {
    std::lock_guard lock(state->mu);
    return std::uniform_int_distribution<uint64_t>(0, bound)(state->engine);
  };
}

}  // namespace quell::agent
