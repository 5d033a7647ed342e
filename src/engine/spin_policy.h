// SpinPolicy: how long the next wait() busy-polls before it sleeps.
//
// Spinning pays when the peer answers while we spin (each process has a core
// of its own); it costs when the waiter shares a core with the very thread it
// waits for (a loaded host): the answer then comes only after the spin ends,
// so every wait takes the whole budget. Measured on the 2-core VM under load:
// 8-byte one-way p50 about 7 us when both processes had a core, 224 us (the
// 200 us budget plus a wake-up) when they shared one, against 18 us without
// spinning. So a spin that runs out turns spinning off, and one that succeeds
// keeps it at the configured budget; every 1024th wait probes with the full
// budget, so a host that becomes quiet again gets spinning back. (Halving the
// budget per miss instead cost several misses after each lucky success, which
// showed in the p99.)
#ifndef TCPX_ENGINE_SPIN_POLICY_H_
#define TCPX_ENGINE_SPIN_POLICY_H_

#include <atomic>
#include <cstdint>

namespace tcpx::engine {

class SpinPolicy {
 public:
  explicit SpinPolicy(int max_us = 0) { reset(max_us); }
  // Before any wait uses it.
  void reset(int max_us) {
    max_us_ = max_us;
    budget_us_.store(max_us, std::memory_order_relaxed);
  }

  // Microseconds the next wait may spin.
  int next_budget_us() {
    if ((calls_.fetch_add(1, std::memory_order_relaxed) & 1023) == 1023) return max_us_;
    return budget_us_.load(std::memory_order_relaxed);
  }
  // The wait finished while spinning (true) or its spin ran out (false).
  void record(bool finished_while_spinning) {
    if (finished_while_spinning) {
      budget_us_.store(max_us_, std::memory_order_relaxed);
      return;
    }
    budget_us_.store(0, std::memory_order_relaxed);
  }

 private:
  int max_us_ = 0;
  std::atomic<int> budget_us_{0};
  std::atomic<uint32_t> calls_{0};
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_SPIN_POLICY_H_
