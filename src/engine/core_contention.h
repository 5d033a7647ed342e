// CoreContention: whether the background thread shares its core with other
// runnable threads right now, judged from the gaps between its own looks at
// a stall (Progress::loop: plugin requests in flight, nothing moving).
//
// A pass that moves nothing takes microseconds. When the next one comes over
// kLostGap after it (beyond any time the thread meant to be away: a nap,
// a sleep), the thread was runnable and not running: another thread had its
// core. A sched_yield() that returns that late says the same. Two such gaps
// within kHold of each other mark the core shared for kHold after the
// second, and the loop waits out stalls in short naps instead of spinning or
// yielding; every later gap renews it.
//
// Why: beside two CPU-bound processes on the 2-core VM, a 1 MiB write's
// initiator spun through its stalls calling sendmsg() on a full socket 85,000
// times a second (12,700 for a send stream); every microsecond of that was
// taken from the peer thread that had to drain the socket, and a yield gives
// a CPU hog on our core its whole time slice. A nap gives the core away and
// is woken on time (a sleeper is favoured at its wake-up). The stall policy's
// two ways cannot show this: both measure long stalls there, since the peer
// is off its core either way. On a quiet host such gaps are rare and come
// alone, and the stall policy decides as before.
//
// Used by the background thread only: no atomics.
#ifndef TCPX_ENGINE_CORE_CONTENTION_H_
#define TCPX_ENGINE_CORE_CONTENTION_H_

#include <chrono>

namespace tcpx::engine {

class CoreContention {
 public:
  using Clock = std::chrono::steady_clock;
  // A gap this long was spent waiting for the core, and not only for a turn
  // among the threads of the two transfer processes themselves. Measured on
  // the 2-core VM (1 MiB reads, the initiator's two threads and the target's
  // one taking turns): quiet, gaps of 1.0-2.1 ms about every 100 ms; beside
  // two CPU hogs, 1.1-7 ms, many near 4 ms (the scheduler tick). At 1 ms,
  // the quiet gaps set the state too and quiet 1 MiB reads lost 5-7 %
  // (medians of 6-8 runs); at 2.5 ms they did not, and loaded 1 MiB writes
  // and reads kept the gain.
  static constexpr auto kLostGap = std::chrono::microseconds(2500);
  // How close two gaps must be to mark the core shared, and how long the
  // mark lasts after the latest. A quiet host still shows a stray gap now
  // and then (0-2 per side in a 2.5 s run of 1 MiB writes, each of which
  // cost 100 ms of napping when one gap was enough); beside CPU hogs they
  // come every few milliseconds while the thread spins, and while it naps
  // some naps run late (several in every hundred), which renews the mark.
  static constexpr auto kHold = std::chrono::milliseconds(100);

  // The first look at a new stall: nothing to compare with yet.
  void first_look(Clock::time_point now) {
    last_ = now;
    away_ = {};
  }
  // A later look at the same stall.
  void look(Clock::time_point now) {
    if (now - last_ > kLostGap + away_) {
      if (now < armed_until_) shared_until_ = now + kHold;
      armed_until_ = now + kHold;
    }
    last_ = now;
    away_ = {};
  }
  // The thread is about to be away on purpose until the next look (at most
  // `d`, unless woken): that much of the gap is not lost time.
  void will_be_away(Clock::duration d) { away_ = d; }
  bool shared(Clock::time_point now) const { return now < shared_until_; }

 private:
  Clock::time_point last_{};
  Clock::duration away_{};
  Clock::time_point armed_until_{};   // a gap was lost this recently
  Clock::time_point shared_until_{};
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_CORE_CONTENTION_H_
