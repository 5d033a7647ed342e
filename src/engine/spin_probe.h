// SpinProbe: windows on the host's monotonic clock in which a waiter whose
// SpinPolicy chose to sleep spins anyway, so that two processes on one host
// that both sleep try spinning at the same moment.
//
// Why both at once. Beside CPU-bound processes, two sleeping ends of a
// loopback ping-pong get stuck on one CPU: the peer's send() is a synchronous
// wake-up, and with no CPU idle the kernel places the woken thread on the
// waker's CPU. There a spin runs out (the waker holds the core the peer
// needs), so the policy rightly keeps sleeping, and every wake-up keeps the
// placement: 8-byte p50 45-95 us against 7-9 for two spinning ends on
// separate CPUs (docs/design.md, "Why the 8-byte p50 beside two CPU hogs").
// One side's exploring spin cannot show the way out while the other sleeps.
// When both spin through the same window, no wake-up pulls them together,
// the load balancer sees two runnable threads on one CPU and moves one, and
// the fast spinning waits then turn both policies to spinning. Both ends
// find the same windows without talking: windows start at multiples of the
// period on CLOCK_MONOTONIC (std::chrono::steady_clock), which every process
// on a host shares, and every period is a power-of-two multiple of the first.
//
// What a window costs. A waiter spins through it (up to kWindow) only while
// it waits for a transfer, and spinning drives that transfer's progress
// itself. Where the two ends really share one core, or sleeping is right for
// any other reason, a window ends with the policy still sleeping; the period
// then doubles, up to kMaxPeriod, so the cost falls to kWindow / kMaxPeriod
// of a core (under 1 %) while waiting. A window that ends with the policy
// spinning (or a policy that spins again) restarts from kFirstPeriod.
//
// Between hosts nothing is shared, and a window only tests spinning against
// sleeping with the whole window's worth of samples instead of one every 64th
// to 1024th wait (SpinPolicy's exploration).
//
// Relaxed atomics, as in SpinPolicy: concurrent waiters may each open or
// judge a window; a lost update only shifts the next window.
#ifndef TCPX_ENGINE_SPIN_PROBE_H_
#define TCPX_ENGINE_SPIN_PROBE_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace tcpx::engine {

class SpinProbe {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kWindow{100};
  static constexpr std::chrono::milliseconds kFirstPeriod{500};
  static constexpr std::chrono::milliseconds kMaxPeriod{16000};

  // A wait starting at now, whose policy has chosen to sleep (sleeping; its
  // choice, not an exploring wait's) or to spin: how long the wait spins
  // instead, 0 outside a window or when the policy spins anyway.
  std::chrono::microseconds spin_for(Clock::time_point now, bool sleeping) {
    using std::chrono::microseconds;
    const int64_t t = std::chrono::duration_cast<microseconds>(now.time_since_epoch()).count();
    const int64_t window = microseconds(kWindow).count();
    int64_t period = period_us_.load(kRelaxed);
    const int64_t opened = opened_at_.load(kRelaxed);
    if (opened >= 0 && t >= opened + window) {  // the window we spun in is over: judge it
      period = sleeping ? std::min(2 * period, microseconds(kMaxPeriod).count()) : first_period();
      period_us_.store(period, kRelaxed);
      opened_at_.store(-1, kRelaxed);
    }
    if (!sleeping) {
      // Stored only when it changes: this runs on every wait, and a store
      // per wait would bounce the line between concurrent waiters.
      if (opened < 0 && period != first_period()) period_us_.store(first_period(), kRelaxed);
      return microseconds(0);
    }
    const int64_t start = t - t % period;
    if (t - start >= window) return microseconds(0);
    opened_at_.store(start, kRelaxed);
    return microseconds(start + window - t);
  }

  // For tests and docs: the current distance between windows.
  std::chrono::milliseconds period() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::microseconds(period_us_.load(kRelaxed)));
  }

 private:
  static constexpr auto kRelaxed = std::memory_order_relaxed;
  static constexpr int64_t first_period() { return std::chrono::microseconds(kFirstPeriod).count(); }
  std::atomic<int64_t> period_us_{first_period()};
  std::atomic<int64_t> opened_at_{-1};  // start of the window last spun in (us); -1: none open
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_SPIN_PROBE_H_
