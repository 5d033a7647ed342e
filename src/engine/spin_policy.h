// SpinPolicy: how long the next wait() busy-polls before it sleeps.
//
// Spinning pays when the peer answers while we spin (each process has a core
// of its own); it costs when the waiter shares a core with the very thread it
// waits for (a loaded host): the answer then comes only after the spin ends,
// so every wait takes the whole budget. Measured on the 2-core VM under load:
// 8-byte one-way p50 about 7 us when both processes had a core, 224 us (the
// 200 us budget plus a wake-up) when they shared one, against 18 us without
// spinning. On the same VM when quiet, a thread that sleeps pays about 45 us
// per wake-up (an idle vCPU is halted), so there spinning must stay on.
//
// So: three spins in a row that run out turn spinning off; while it is off,
// a wait now and then probes with the full budget (every 64th wait, backing
// off to every 4096th while probes keep failing); one spin that succeeds
// turns it back on. Relaxed atomics: the policy is a heuristic shared by the
// endpoint's threads, and a lost update only shifts a probe.
#ifndef TCPX_ENGINE_SPIN_POLICY_H_
#define TCPX_ENGINE_SPIN_POLICY_H_

#include <algorithm>
#include <atomic>

namespace tcpx::engine {

class SpinPolicy {
 public:
  explicit SpinPolicy(int max_us = 0) { reset(max_us); }
  // Before any wait uses it.
  void reset(int max_us) {
    max_us_ = max_us;
    on_.store(true, kRelaxed);
    misses_.store(0, kRelaxed);
    probe_every_.store(kMinProbeEvery, kRelaxed);
    since_probe_.store(0, kRelaxed);
  }

  // Microseconds the next wait may spin (0: sleep at once).
  int next_budget_us() {
    if (max_us_ <= 0) return 0;
    if (on_.load(kRelaxed)) return max_us_;
    if (since_probe_.fetch_add(1, kRelaxed) + 1 < probe_every_.load(kRelaxed)) return 0;
    since_probe_.store(0, kRelaxed);
    return max_us_;
  }

  // A wait that spun: it finished while spinning (true) or the spin ran out.
  void record(bool finished_while_spinning) {
    if (finished_while_spinning) {
      misses_.store(0, kRelaxed);
      probe_every_.store(kMinProbeEvery, kRelaxed);
      on_.store(true, kRelaxed);
      return;
    }
    if (!on_.load(kRelaxed)) {  // a failed probe: probe less often
      probe_every_.store(std::min(kMaxProbeEvery, probe_every_.load(kRelaxed) * 2), kRelaxed);
      return;
    }
    if (misses_.fetch_add(1, kRelaxed) + 1 >= kMissesToStop) on_.store(false, kRelaxed);
  }

 private:
  static constexpr auto kRelaxed = std::memory_order_relaxed;
  static constexpr int kMissesToStop = 3;
  static constexpr int kMinProbeEvery = 64;
  static constexpr int kMaxProbeEvery = 4096;
  int max_us_ = 0;
  std::atomic<bool> on_{true};
  std::atomic<int> misses_{0};
  std::atomic<int> probe_every_{kMinProbeEvery};
  std::atomic<int> since_probe_{0};
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_SPIN_POLICY_H_
