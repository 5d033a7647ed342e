// SpinPolicy: whether the next wait() busy-polls (for up to the budget,
// Config::spin_us) before it sleeps.
//
// Spinning pays when the peer answers while we spin (each process has a core
// of its own); it costs when the waiter shares a core with the very thread it
// waits for: the answer then comes only after the spin ends, so every wait
// takes the whole budget. Measured on the 2-core VM: 8-byte one-way p50 about
// 7 us when both processes had a core, 224 us (the 200 us budget plus a
// wake-up) when they shared one, against 18 us without spinning; when quiet,
// a thread that sleeps pays about 45 us per wake-up (an idle vCPU is halted).
//
// Neither the share of spins that succeed nor a run of misses tells which
// way is faster. Beside CPU-bound processes the peer is often off its core
// for milliseconds, and then a spin that runs out costs nothing the sleeping
// wait would not have paid too. On the quiet VM the scheduler sometimes kept
// both ends' spinning threads on one core for seconds, where most spins ran
// out but enough succeeded to keep spinning on. A rule of "three misses in a
// row turn it off, one success back on" measured a median p50 of 52 us beside
// two CPU hogs and 30 us quiet (whole runs near 200 us), against 24 and 17 us
// for this one. So the policy compares what it is after, the time waits take:
// a moving average of the waits that spun and of those that slept. A wait
// longer than the budget plus kSlackUs is left out of both: it waited for a
// peer that was busy or away, the same time either way (a long transfer, a
// descheduled process), and one such sample would outweigh hundreds of short
// ones. It spins while spinning waits are no slower.
//
// The background thread uses a second instance for a different question
// (Progress::loop): while plugin requests are in flight and nothing moves,
// whether to keep testing without giving the core away (spin) or to
// sched_yield() between passes. There a long sample is the very signal: a
// thread that yields to a CPU-bound process on its core gets the core back
// only after that process's time slice (milliseconds), one that spins holds
// the core a peer process sharing it needs for as long. So that instance
// caps long samples (reset's cap_us) instead of leaving them out. A third
// instance, with the waiters' rule, decides how the background thread waits
// for a peer's next frame after serving one while the application stays
// away: polling the sockets (spin) or asleep on them. There a spin that runs
// out is not free: it is a core taken from whatever else runs on the host
// (on loopback, the very peer waiting for the answer just sent), for
// nothing. A target served one request every 20 ms spent 200 us of core
// after each, and the peer's FIFO round trip after such a gap took 500-555
// us against 310-410 with this rule (docs/design.md). So that instance also
// asks that gaps be short (reset's short_gaps): it spins only while the
// gaps it sees, spun or slept, each counted up to twice the budget, average
// under the budget. Sleeping waits keep that average current, so it needs
// no probes.
//
// Every explore_every_-th wait tries the other way to keep that average
// current. Exploration backs off (every 64th to every 1024th wait) while it
// keeps confirming the choice; an exploring wait that beats the chosen way's
// average is followed by another at once, until the choice flips or one does
// not (so a host that changed is followed within a few waits); a flip starts
// again at every 64th.
//
// Relaxed atomics: the policy is a heuristic shared by the endpoint's
// threads, and a lost update only shifts an average or a sample.
#ifndef TCPX_ENGINE_SPIN_POLICY_H_
#define TCPX_ENGINE_SPIN_POLICY_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace tcpx::engine {

class SpinPolicy {
 public:
  // How far each sample moves its average: 1/kWindow of the way, or 1/window
  // where reset() is given one.
  static constexpr int kWindow = 8;
  // The waiters' window (Endpoint::Impl::spin). A spinning wait of a quiet
  // ping-pong takes 4-5 us, and now and then 150-350 us (the peer was
  // descheduled, or its own wait was an exploring sleep); such a wait moved
  // an average of 1/8 by up to 40 us, past the sleeping waits' 20-30, and
  // the choice flipped to sleeping 8-23 times a second on each side for a
  // few hundred waits each time. At 1/32 it moves the average by about 10.
  static constexpr int kWaitWindow = 32;

  explicit SpinPolicy(int max_us = 0, int cap_us = 0, bool short_gaps = false) {
    reset(max_us, cap_us, short_gaps);
  }
  // Before any wait uses it. cap_us 0: samples longer than the budget plus
  // kSlackNs are left out; else they count as cap_us. short_gaps: spin only
  // while the waits average under the budget (see above).
  void reset(int max_us, int cap_us = 0, bool short_gaps = false, int window = kWindow) {
    window_ = window;
    max_us_ = max_us;
    cap_us_ = cap_us;
    max_ns_ = int64_t{max_us} * 1000;
    cap_ns_ = int64_t{cap_us} * 1000;
    short_gaps_ = short_gaps;
    gap_avg_.store(0, kRelaxed);
    spin_.store(true, kRelaxed);
    spun_avg_.store(0, kRelaxed);
    slept_avg_.store(-1, kRelaxed);  // unknown until the first sleeping wait
    explore_every_.store(kMinExploreEvery, kRelaxed);
    waits_.store(0, kRelaxed);
  }

  // Microseconds the next wait may spin (0: sleep at once).
  int next_budget_us() {
    if (max_us_ <= 0) return 0;
    bool spin = spin_.load(kRelaxed);
    if ((waits_.fetch_add(1, kRelaxed) + 1) % explore_every_.load(kRelaxed) == 0) spin = !spin;
    if (short_gaps_ && gap_avg_.load(kRelaxed) >= max_ns_) return 0;
    return spin ? max_us_ : 0;
  }

  // A wait that did not finish at once: whether it was allowed to spin (its
  // budget was not 0) and how long it took in all.
  void record(bool spun, std::chrono::nanoseconds took) {
    const int64_t took_ns = took.count();
    if (max_us_ <= 0) return;
    if (short_gaps_) {
      const int64_t g = gap_avg_.load(kRelaxed);
      gap_avg_.store(g + (std::min(took_ns, 2 * max_ns_) - g) / window_, kRelaxed);
    }
    if (cap_us_ == 0 && took_ns > max_ns_ + kSlackNs) return;
    const int64_t ns = cap_us_ == 0 ? took_ns : std::min(took_ns, cap_ns_);
    std::atomic<int64_t>& avg = spun ? spun_avg_ : slept_avg_;
    const int64_t a = avg.load(kRelaxed);
    avg.store(a < 0 ? ns : a + (ns - a) / window_, kRelaxed);
    const int64_t spun_avg = spun_avg_.load(kRelaxed), slept = slept_avg_.load(kRelaxed);
    const bool spin = slept < 0 || spun_avg <= slept;
    const bool was = spin_.exchange(spin, kRelaxed);
    if (spin != was) {
      explore_every_.store(kMinExploreEvery, kRelaxed);
    } else if (spun != was) {  // an exploring wait that did not flip the choice
      const bool promising = ns < (was ? spun_avg : slept);
      const int every = explore_every_.load(kRelaxed);
      explore_every_.store(promising ? 1 : every == 1 ? kMinExploreEvery : std::min(kMaxExploreEvery, every * 2),
                           kRelaxed);
    }
  }

  bool spinning() const { return spin_.load(kRelaxed); }
  // With short_gaps: whether recent gaps were short enough to spin for.
  bool gaps_short() const { return gap_avg_.load(kRelaxed) < max_ns_; }

 private:
  static constexpr auto kRelaxed = std::memory_order_relaxed;
  // Two wake-ups on this VM, with room to spare.
  static constexpr int64_t kSlackNs = 200'000;
  static constexpr int kMinExploreEvery = 64;
  static constexpr int kMaxExploreEvery = 1024;
  int window_ = kWindow;
  int max_us_ = 0;
  int cap_us_ = 0;
  int64_t max_ns_ = 0;
  int64_t cap_ns_ = 0;
  bool short_gaps_ = false;
  // The averages are kept in nanoseconds: in whole microseconds, the integer
  // step (sample - average) / kWindow is 0 while a sample is within kWindow
  // us below the average, so an average could not fall to within 7 us of
  // samples of 4 us, but rose with every long one. That bias put the average
  // of 4-5 us spinning waits at 11-25 us, next to sleeping ones at 14-25, and
  // the choice flipped to sleeping up to 27 times a second in a quiet
  // ping-pong, for a few hundred sleeping waits each time.
  std::atomic<int64_t> gap_avg_{0};  // each sample up to 2 * max_ns_
  std::atomic<bool> spin_{true};
  std::atomic<int64_t> spun_avg_{0};
  std::atomic<int64_t> slept_avg_{-1};  // -1: no sample yet
  std::atomic<int> explore_every_{kMinExploreEvery};
  std::atomic<unsigned> waits_{0};
};

// One wait of the background thread that a SpinPolicy decides (a stall of
// plugin transfers, an idle gap between a peer's requests): when it began,
// whether it spins, and how many try_pass calls had been refused by then
// (a count the caller keeps). The loop is single-threaded: no atomics.
class SpinEpisode {
 public:
  using Clock = std::chrono::steady_clock;
  bool active() const { return active_; }
  // Starts a wait; the policy says whether it spins.
  void begin(SpinPolicy& policy, Clock::time_point now, uint32_t refused) {
    active_ = true;
    spins_ = policy.next_budget_us() > 0;
    measured_ = true;
    start_ = now;
    refused_ = refused;
  }
  // The wait is over (what it waited for came): the policy learns how long
  // it took.
  void end(SpinPolicy& policy, Clock::time_point now) {
    if (active_ && measured_) policy.record(spins_, now - start_);
    active_ = false;
  }
  // The wait gives its core away from now on, whatever the policy chose, and
  // teaches the policy nothing: it was decided by something else (a core
  // found shared, CoreContention).
  void give_up_core() {
    spins_ = false;
    measured_ = false;
  }
  // The wait stopped meaning what it measures (someone else drove): no sample.
  void drop() { active_ = false; }
  // Whether to keep the core: the wait spins, has not used up budget, and no
  // application thread polling with try_pass has found the token taken since
  // it began (that thread would drive if we let go; spinning on only takes
  // its core).
  bool keeps_core(Clock::time_point now, std::chrono::microseconds budget, uint32_t refused) const {
    return active_ && spins_ && now - start_ < budget && refused == refused_;
  }

 private:
  bool active_ = false;
  bool spins_ = false;
  bool measured_ = false;
  Clock::time_point start_{};
  uint32_t refused_ = 0;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_SPIN_POLICY_H_
