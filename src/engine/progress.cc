#include "engine/progress.h"

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <condition_variable>

#include "common/log.h"

namespace tcpx::engine {
namespace {

// How long the parked background thread sleeps before it looks whether the
// guests are gone: the most a socket event waits after the last guest left
// with its transfer done (it is then nobody's to read until we resume).
constexpr std::chrono::nanoseconds kParkSlice = std::chrono::microseconds(200);
// How long the background thread keeps its core while plugin requests are
// in flight and nothing moves, when it spins through stalls at all (loop):
// longer than a CPU-bound neighbour's time slice (1.4 ms here), so a stall
// that waits for the peer's other core is not cut short by a yield.
constexpr auto kStallSpin = std::chrono::microseconds(2000);
// How long the background thread sleeps between looks at a stall while its
// core is shared (CoreContention): long enough for the thread that wanted the
// core to run, short next to a 1 MiB chunk's time on the wire. 10, 30 and
// 100 us measured alike (1 MiB writes beside two CPU hogs); a 30 us sleep
// takes about 100 us on this VM anyway (timer slack and the wake-up).
constexpr auto kStallNap = std::chrono::microseconds(30);
// Stalls count at most this long in stall_policy_'s averages: long enough to
// tell a lost time slice (yielding to a CPU hog) from a short wait, short
// enough that one descheduled peer does not outweigh the rest.
constexpr int kStallCapUs = 8000;
// How long the application must have left the endpoint alone (no post,
// poll or wait) before the background thread spins for a peer's next frame.
constexpr auto kAppAway = std::chrono::milliseconds(10);
// How long a connection whose peer closed in order may keep its plugin
// requests in flight (at most TCPX_PEER_TIMEOUT_MS): on loopback the bytes
// the peer sent before closing are in within microseconds; a plugin whose
// receives never complete once the peer is gone (TCPX) costs this much.
constexpr int kDrainAfterPeerClose = 1000;
// How long run_sync (close_connection, dereg, serve_messages) waits for the
// token before it gives up with TIMED_OUT.
constexpr auto kRunSyncTimeout = std::chrono::seconds(10);

// Milliseconds from now until t, for poll(): -1 (forever) when t is max,
// 0 when t has passed (min: "at once"), else at least 1 and at most a minute.
int poll_ms_until(Clock::time_point t) {
  if (t == Clock::time_point::max()) return -1;
  const auto now = Clock::now();
  if (t <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
  return static_cast<int>(std::clamp<long long>(ms, 1, 60'000));
}

}  // namespace

Status ConnShared::pop_message(std::vector<uint8_t>* out, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&] { return !messages_.empty() || !error_.ok(); };
  if (timeout_ms < 0) cv_.wait(lock, ready);
  else cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready);
  if (!messages_.empty()) {
    *out = std::move(messages_.front());
    messages_.pop_front();
    return Status::Ok();
  }
  if (!error_.ok()) return error_;
  return TimedOut("no message within " + std::to_string(timeout_ms) + " ms");
}

Progress::Progress(ProgressDeps deps) : d_(std::move(deps)) {
  stall_policy_.reset(d_.spin_us > 0 ? static_cast<int>(kStallSpin.count()) : 0, kStallCapUs);
  idle_policy_.reset(d_.spin_us, 0, /*short_gaps=*/true);
}

Progress::~Progress() { stop(); }

Status Progress::start() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return TransportError("eventfd failed");
  thread_ = std::thread([this] { loop(); });
  return Status::Ok();
}

void Progress::stop() {
  if (thread_.joinable()) {
    stop_ = true;
    wake_bg();
    thread_.join();
  }
  // The thread is gone: finish the leftovers here, under the token like any
  // other driver (a late guest could still be around in a buggy caller).
  {
    std::lock_guard<std::mutex> token(drive_mu_);
    Driving driving(this);
    run_commands();
    std::vector<ConnId> ids;
    for (auto& [id, c] : conns_) ids.push_back(id);
    for (ConnId id : ids) close_connection(id, Closed("endpoint destroyed"));
  }
  if (wake_fd_ >= 0) close(wake_fd_);
  wake_fd_ = -1;
}

void Progress::assert_driving() const {
  assert(driver_.load(std::memory_order_relaxed) == std::this_thread::get_id() &&
         "progress state touched without the progress token");
}

void Progress::wake_bg() {
  // One write per wake-up: while the eventfd is readable, more writes change
  // nothing but cost a syscall each (a stream of posts would pay one each).
  if (wake_sent_.exchange(true)) return;
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

void Progress::drain_wake() {
  // Cleared after the read, never before: a wake between a clear and the
  // read would have its write consumed here and leave the flag set with the
  // eventfd empty, and every later wake would be skipped. A wake between the
  // read and the clear is skipped, but this thread is awake and looks at
  // everything again after the clear.
  uint64_t v;
  (void)!read(wake_fd_, &v, sizeof v);
  wake_sent_.store(false);
}

void Progress::hand_back(bool lazy) {
  if (guests_.load() > 0) return;  // a guest drives; it hands back when it leaves
  // What only the background thread would drive: plugin requests to
  // test(), commands.
  bool must_drive = work_pending_.load() || has_cmds_.load();
  switch (bg_state_.load()) {
    case BgState::kRunning:
      return;
    case BgState::kParked:
      // Parked for a guest that is gone, or lingering between an
      // application's waits. A guest that leaves because its transfer
      // finished is usually back within microseconds (the next blocking
      // call), and a thread that just started its posts or ran a pass itself
      // (submit, send_now, try_pass) has sent what it had: they do not wake
      // us (lazy), as we look again within kParkSlice anyway, and then also
      // see a changed socket set or heartbeat deadline (bg_must_look_, which
      // every idle connection's first op sets). One that gives up spinning
      // does. Waking us per post cost an eventfd write and two context
      // switches each: 4 KiB sends went 0.52 -> 0.66 GB/s without them
      // (medians of 7 alternating runs). Plugin requests in flight (the
      // plugin moves bytes only inside test()) wake us unless the
      // application comes back within microseconds (app_returns_soon: a
      // window of waits, which drives them itself): waking us then made us
      // take the token from the returning guest at every 64 KiB transfer.
      if (!lazy || has_cmds_.load() || (work_pending_.load() && !app_returns_soon())) wake_bg();
      return;
    case BgState::kSleeping:
      // Asleep on the sockets, which wake it for anything they bring, but
      // not for a new socket or an earlier heartbeat; acks held back for
      // company would wait for the peer's next frame.
      if (must_drive || bg_must_look_.load() || acks_held_.load()) wake_bg();
      return;
  }
}

void Progress::leave_guest(bool lazy, Clock::time_point done_at) {
  if (!lazy) {
    guest_gave_up_.store(true, std::memory_order_relaxed);
  } else {
    if (!guest_done_.load(std::memory_order_relaxed)) guest_done_.store(true, std::memory_order_relaxed);
    last_done_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(done_at.time_since_epoch()).count(),
                        std::memory_order_relaxed);
  }
  guests_.fetch_sub(1);
  hand_back(lazy);
}

void Progress::note_guest_return(Clock::time_point now) {
  const int64_t last = last_done_ns_.exchange(0, std::memory_order_relaxed);  // the first return counts
  if (last == 0) return;
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const int gap = static_cast<int>(std::clamp<int64_t>((now_ns - last) / 1000, 0, kReturnGapCapUs));
  const int avg = return_gap_us_.load(std::memory_order_relaxed);
  return_gap_us_.store(avg + (gap - avg) / 8, std::memory_order_relaxed);
}

void Progress::waiter_sleeps() {
  guest_gave_up_.store(true, std::memory_order_relaxed);
  hand_back(/*lazy=*/false);
}

void Progress::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    cmds_.push_back(Command{PostedOp{}, std::move(fn)});
    has_cmds_.store(true);
  }
  hand_back();
}

template <class Work>
void Progress::drive_held(Work&& work) {
  Driving driving(this);
  bool ran = run_commands();
  // Frames of queued commands leave now whatever work() decides. Lone acks
  // wait for company only when a pass comes soon to send them; otherwise
  // this thread sends them now, which costs less than waking the background
  // thread to do it.
  if (work() || ran) flush_all(/*hold_lazy=*/next_pass_soon());
  else fail_broken_channels();  // a work() that queued without moving (flush_all does it otherwise)
  publish_work_pending(any_busy());
  note_lazy_held();
}

template <class Work>
bool Progress::drive_if_free(Work&& work) {
  // On the loop (a message service) the token is ours already, and it is
  // not recursive.
  if (on_loop()) return false;
  std::unique_lock<std::mutex> token(drive_mu_, std::try_to_lock);
  if (!token.owns_lock()) return false;
  drive_held(std::forward<Work>(work));
  release_token(token);
  hand_back(/*lazy=*/true);
  return true;
}

void Progress::submit(std::span<const PostedOp> ops) {
  note_app_active();
  // Nobody drives right now: start the ops here, so their first frames leave
  // before this call returns. Otherwise (or on the loop, a message service
  // posting a transfer) they queue and start with the next pass.
  const bool started = drive_if_free([&] {
    bool streaming = false, behind_replies = true;
    for (const auto& op : ops) {
      auto it = conns_.find(op.conn);
      Connection* c = it == conns_.end() ? nullptr : it->second.get();
      if (c != nullptr && c->live_ops > 0) streaming = true;
      bool request = op.kind == OpKind::kSend || op.kind == OpKind::kWrite || op.kind == OpKind::kRead;
      if (!request || c == nullptr || !c->error.ok() || !c->owed.reply_on_the_way(op.kind != OpKind::kSend))
        behind_replies = false;
      start_op(op);
      if (c != nullptr && (!c->error.ok() || c->control->has_pressing())) behind_replies = false;
    }
    // The first op of an idle connection leaves now (latency). Behind ops
    // already outstanding, the frames wait for the next pass, so consecutive
    // posts leave in one send():
    //  - requests behind requests whose replies are on their way: the pass
    //    that reads such a reply flushes them, whoever runs it (a waiter, or
    //    the background thread woken by the socket). See owed_replies.h for
    //    why that reply is sure to come.
    //  - other frames (a receive's CTS), when that pass comes soon anyway: a
    //    waiter drives or the background thread runs or is parked (back
    //    within kParkSlice); a background thread asleep on the sockets would
    //    not come, so then flush.
    return !(behind_replies || (streaming && next_pass_soon()));
  });
  if (started) return;
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    for (const auto& op : ops) cmds_.push_back(Command{op, {}});
    has_cmds_.store(true);
  }
  hand_back();
}

bool Progress::receive_now(const PostedOp& op, uint64_t* bytes) {
  note_app_active();
  bool done = false;
  drive_if_free([&] {
    auto it = conns_.find(op.conn);
    Connection* c = it == conns_.end() ? nullptr : it->second.get();
    if (c != nullptr && c->error.ok() && !c->draining()) done = protocol_.receive_held(c, op, bytes);
    // Its ack may wait for company like any other: the application's next
    // send, or a pass that comes soon (drive_held).
    return done;
  });
  return done;
}

void Progress::send_now(ConnId id, FrameType type, std::vector<uint8_t> payload) {
  // Nobody drives: the frame leaves now instead of waiting for the
  // background thread to wake up for it (a C API md vector, whose FIFO
  // answers NIXL expects within a few milliseconds). payload is moved only
  // if the work runs.
  if (drive_if_free([&] {
        send_frame(id, type, std::move(payload));
        return true;
      }))
    return;
  post([this, id, type, payload = std::move(payload)]() mutable { send_frame(id, type, std::move(payload)); });
}

Status Progress::run_sync(const std::function<void()>& fn) {
  if (on_loop()) return Busy("not allowed on the progress path (from a message service)");
  Guest guest(this);
  // The token is let go after every pass; only a pass that blocks (a message
  // service or a plugin call that hangs) could keep it, and then the caller
  // gets an error instead of hanging with it.
  // try_lock in a loop rather than a timed mutex: GCC 12's TSan does not
  // see std::timed_mutex::try_lock_for (pthread_mutex_clocklock) acquire,
  // and the Guest above makes the background thread let go within a pass.
  std::unique_lock<std::mutex> token(drive_mu_, std::defer_lock);
  const auto give_up = Clock::now() + kRunSyncTimeout;
  while (!token.try_lock()) {
    if (Clock::now() >= give_up)
      return TimedOut("the progress loop held its token for over " +
                      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kRunSyncTimeout).count()) +
                      " s (a blocking message service or plugin call?)");
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  drive_held([&] {
    fn();
    return true;
  });
  return Status::Ok();
}

void Progress::release_token(std::unique_lock<std::mutex>& token) {
  token.unlock();
  // Store-load order between our unlock and the waiters' count; the guest
  // does the opposite (counts itself, then tries the token), so either it
  // gets the token or we see it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (handover_waiters_.load() == 0) return;
  {
    std::lock_guard<std::mutex> lock(handover_mu_);
    ++handovers_;
  }
  handover_cv_.notify_all();
}

bool Progress::wait_for_token(std::unique_lock<std::mutex>& token, Clock::time_point until) {
  handover_waiters_.fetch_add(1);
  std::unique_lock<std::mutex> lock(handover_mu_);
  const uint64_t seen = handovers_;
  if (!token.try_lock()) handover_cv_.wait_until(lock, until, [&] { return handovers_ != seen; });
  lock.unlock();
  handover_waiters_.fetch_sub(1);
  return token.owns_lock() || token.try_lock();
}

bool Progress::try_pass(bool* moved, Clock::time_point wait_until, Clock::time_point now) {
  if (on_loop()) return false;  // a message service polling: the pass is ours already
  note_app_active();
  std::unique_lock<std::mutex> token(drive_mu_, std::try_to_lock);
  if (!token.owns_lock() && wait_until != Clock::time_point{}) {
    refused_passes_.fetch_add(1, std::memory_order_relaxed);  // as below
    (void)wait_for_token(token, wait_until);
    now = {};  // the caller's reading is from before the sleep
  }
  if (!token.owns_lock()) {
    refused_passes_.fetch_add(1, std::memory_order_relaxed);  // ends a spinning stall (loop)
    return false;
  }
  bool m;
  {
    Driving driving(this);
    m = pass(/*hold_lazy=*/true, now);
    note_lazy_held();
  }
  release_token(token);
  hand_back(/*lazy=*/true);
  if (moved != nullptr) *moved = m;
  return true;
}

bool Progress::run_commands() {
  if (!has_cmds_.load()) return false;
  {
    std::lock_guard<std::mutex> lock(cmd_mu_);
    running_cmds_.swap(cmds_);
    has_cmds_.store(false);
  }
  for (auto& cmd : running_cmds_) {
    if (cmd.fn) cmd.fn();
    else start_op(cmd.op);
  }
  running_cmds_.clear();
  return true;
}

bool Progress::any_busy() const {
  for (auto& [id, c] : conns_)
    if (c->error.ok() && c->busy()) return true;
  return protocol_.staging_busy();
}

bool Progress::pass(bool hold_lazy, Clock::time_point caller_now) {
  // Longest time control frames wait while data moves.
  constexpr auto kControlPollGap = std::chrono::microseconds(200);
  ++pass_no_;
  run_commands();
  bool moved = drive_channels();
  if (protocol_.poll_staging()) moved = true;
  // One clock read per pass serves the heartbeat and the control-poll gap;
  // a spinning waiter's pass that moved nothing takes the one its loop just
  // made (a clock read was a sixth of a spin's user time, 8-byte ping-pong).
  const auto now = moved || caller_now == Clock::time_point{} ? Clock::now() : caller_now;
  if (draining_ > 0) end_drains(now);
  if (now >= next_liveness_) next_liveness_ = check_liveness(now);
  if (now >= protocol_.next_deadline()) protocol_.expire(now);
  flush_all(hold_lazy);
  bool busy = any_busy();
  // While data moves, read the control sockets only every few passes (a poll
  // syscall per pass would cost as much as the I/O), but at least every
  // kControlPollGap: a pass moving large chunks can take long, and a peer's
  // request (a C API md vector whose FIFO answer NIXL expects within ~4 ms)
  // must not wait behind a bulk transfer.
  if (!busy || !moved || ++passes_since_poll_ >= 8 || now - last_control_poll_ >= kControlPollGap) {
    poll_sockets();
    passes_since_poll_ = 0;
    last_control_poll_ = now;
    // Replies to what was just read (acks, CTS, FIFO answers) leave now, not
    // a pass later: the caller of this pass may be a waiter about to leave.
    flush_all(hold_lazy);
    busy = any_busy();
  }
  publish_work_pending(busy);
  return moved;
}

void Progress::loop() {
  std::unique_lock<std::mutex> token(drive_mu_, std::defer_lock);
  while (!stop_.load(std::memory_order_relaxed)) {
    if (guests_.load() > 0) {
      // An application thread drives: stay off the token and the cores
      // (taking the token now would make every pass of the guest hand the
      // mutex back and forth with us).
      if (token.owns_lock()) release_token(token);
      stall_.drop();
      idle_.drop();
      guest_done_.store(false, std::memory_order_relaxed);
      bool woken = park(ParkFor::kGuest);
      // A guest left with its transfer done (lazily, so nobody woke us)
      // during the slice, and the application comes back within
      // microseconds (app_returns_soon): it is in a run of calls (a window
      // of transfers: post, wait, post...) and drives again itself. Taking
      // the token now would leave its next wait spinning on a refused
      // token, and on a loaded host behind a token holder that was
      // descheduled: 64 KiB sends ran at 3.4 GB/s with both threads of
      // each process busy, and the waits' spin policy learnt to sleep from
      // those refused spins. So stay parked for as long as waits keep
      // ending; once none did for a slice we take over.
      while (!woken && guests_.load() == 0 && app_returns_soon() &&
             guest_done_.exchange(false, std::memory_order_relaxed) && !stop_.load(std::memory_order_relaxed))
        woken = park(ParkFor::kAppDriving);
      continue;
    }
    if (!token.owns_lock()) token.lock();
    if (guests_.load() > 0) {  // one arrived while we waited for the token
      release_token(token);
      continue;
    }
    bool moved, woke_waiter;
    {
      Driving driving(this);
      heard_ = false;  // what this pass reads, not what a guest's did
      const uint64_t woken = d_.transfers->waiters_woken();
      moved = pass(/*hold_lazy=*/false);
      woke_waiter = d_.transfers->waiters_woken() != woken;
    }
    const bool served = moved || heard_;  // the clock is read only around waits
    if (served && idle_.active()) idle_.end(idle_policy_, Clock::now());
    if (!work_pending_.load()) {
      stall_.drop();
      // Nothing in flight. If this pass served a peer (read its frames or
      // moved its data) while our application stays away (a one-sided
      // target, a process busy elsewhere), poll the sockets for the peer's
      // next frames for up to spin_us, or sleep on them at once, whichever
      // made recent gaps end sooner (idle_policy_, the waiters' rule:
      // spinning loses when the peer shares our core), and only while the
      // gaps average under spin_us (short_gaps: a spin that runs out took a
      // core for nothing, often the peer's). A frame that finds
      // us asleep costs a wake-up on both sides (the sender's send() wakes
      // us): 4 KiB writes, quiet, 0.70 -> 1.00 GB/s, beside two CPU hogs
      // 0.28 -> 0.33 (medians of 7 alternating runs); reads alike. Not while
      // the application is at work here (it posted, polled or waited, or
      // this pass woke its waiter, within kAppAway): it drives itself, and
      // a spin would only take the core its thread needs (4 KiB send streams
      // spun 500-650 times a second on each side without this rule). An
      // idle endpoint costs nothing: only a pass that served something
      // starts a spin.
      const auto now = Clock::now();  // a spin, a park or a sleep follows
      const uint32_t refused = refused_passes_.load(std::memory_order_relaxed);
      if (app_active_.exchange(false, std::memory_order_relaxed) || guest_came_.load(std::memory_order_relaxed) ||
          woke_waiter) {
        idle_.drop();  // the application is at work here and drives itself
        app_seen_at_ = now;
      } else if (served && d_.spin_us > 0 && now - app_seen_at_ >= kAppAway) {
        idle_.begin(idle_policy_, now, refused);
      }
      if (idle_.keeps_core(now, std::chrono::microseconds(d_.spin_us), refused)) continue;
      // Sleep until a socket, a command or a guest's departure wakes us, or
      // the next heartbeat step is due. No sched_yield()ing first: on a
      // loaded 2-core host a yielding thread waits behind every runnable
      // thread for a time slice, while a thread sleeping in poll() is woken
      // at once.
      // A guest that gave up spinning sleeps until its transfer is final,
      // which only a pass of ours will now see: watch the sockets for it.
      // Parked, its answer would wait out the slice unread (8-byte
      // ping-pong: a wait that ran past the spin budget by a little took
      // 200 us more, which set the p99).
      const bool sleeper = guest_gave_up_.exchange(false, std::memory_order_relaxed);
      if (guest_came_.exchange(false, std::memory_order_relaxed) && !sleeper) {
        // Between two waits of an application that keeps coming back (a
        // ping-pong, a window of transfers): linger, parked, for one slice.
        // Asleep on the sockets we would be woken by every frame the next
        // guest reads itself, and a guest leaving with acks held back (they
        // ride in the application's next send) would have to wake us for
        // them: 8-byte ping-pong paid an eventfd write, a wake-up, a poll
        // and often a lone ack's send() per message on each side. Our own
        // pass held no acks back (pass(false)), so none waits for the slice.
        release_token(token);
        park(ParkFor::kLinger);
        continue;
      }
      sleep_on_sockets(token, poll_ms_until(std::min(next_liveness_, protocol_.next_deadline())));
      continue;
    }
    idle_.drop();
    // Plugin requests in flight: the plugin moves bytes only inside test(),
    // so keep testing. When nothing moves, either keep the core for up to
    // kStallSpin or give it away at once (sched_yield), whichever ended
    // recent stalls sooner (stall_policy_): yielding hands a CPU-bound
    // process on our core its whole time slice, spinning keeps a peer
    // process that shares our core from producing what we wait for. Write
    // 64 KiB, pinned, each side sharing its core with a CPU hog: 0.32 GB/s
    // always yielding, 0.92 so; both sides on one core: 1.41 and 1.40
    // (medians of 3). While the core is found shared with other runnable
    // threads (CoreContention), neither: nap between passes. Beside two CPU
    // hogs a 1 MiB write's initiator spun or yielded through 85,000 stalled
    // passes a second on a full socket; napping, 1 MiB writes went 1.73 ->
    // 2.20 GB/s and 16 MiB 1.53 -> 2.20 (medians of 5). After a long stall,
    // sleep a millisecond at a time.
    if (moved) {
      if (stall_.active()) stall_.end(stall_policy_, Clock::now());
      continue;
    }
    const auto now = Clock::now();
    const uint32_t refused = refused_passes_.load(std::memory_order_relaxed);
    if (!stall_.active()) {
      stall_.begin(stall_policy_, now, refused);
      core_.first_look(now);
      yield_passes_ = 0;
    } else {
      core_.look(now);
    }
    const bool shared = core_.shared(now);
    if (shared) stall_.give_up_core();
    if (stall_.keeps_core(now, kStallSpin, refused)) continue;
    if (++yield_passes_ > 2000) {
      core_.will_be_away(std::chrono::milliseconds(1));
      sleep_on_sockets(token, 1);
    } else if (shared) {
      release_token(token);
      core_.will_be_away(kStallNap);
      // A plain sleep: nobody wakes a thread that is not parked, and a
      // guest or a command finds the token free meanwhile.
      std::this_thread::sleep_for(kStallNap);
    } else if (yield_passes_ > 4) {
      release_token(token);
      sched_yield();
    }
  }
}

bool Progress::park(ParkFor why) {
  bg_state_.store(BgState::kParked);
  // Re-check after publishing (see hand_back): a guest that left, or work
  // that arrived, before the store saw kRunning and did not wake us.
  bool wait = false;
  switch (why) {
    case ParkFor::kGuest: wait = guests_.load() > 0; break;
    case ParkFor::kLinger: wait = !(has_cmds_.load() || work_pending_.load()); break;
    case ParkFor::kAppDriving: wait = !has_cmds_.load(); break;
  }
  bool woken = why == ParkFor::kAppDriving && !wait;  // commands to run: drive now
  if (wait && !stop_.load()) {
    pollfd p{wake_fd_, POLLIN, 0};
    timespec slice{0, kParkSlice.count()};
    if (ppoll(&p, 1, &slice, nullptr) > 0) {
      drain_wake();
      woken = true;
    }
  }
  bg_state_.store(BgState::kRunning);
  return woken;
}

void Progress::sleep_on_sockets(std::unique_lock<std::mutex>& token, int timeout_ms) {
  bg_must_look_.store(false);  // this sleep set and deadline are current
  sleep_pfds_.clear();
  sleep_pfds_.push_back(pollfd{wake_fd_, POLLIN, 0});
  add_control_fds(&sleep_pfds_, nullptr);
  // Publish the state, then re-check what would wake us: whoever changes
  // guests_ or queues a command does the opposite (writes, then reads our
  // state), so one of the two always notices the other.
  bg_state_.store(BgState::kSleeping);
  if (guests_.load() > 0 || has_cmds_.load() || bg_must_look_.load() || stop_.load()) timeout_ms = 0;
  release_token(token);
  // A connection closed while we sleep leaves a stale fd here: poll reports
  // it (POLLNVAL) or not; either way we only wake up and look again.
  int n = poll(sleep_pfds_.data(), sleep_pfds_.size(), timeout_ms);
  bg_state_.store(BgState::kRunning);
  if (n > 0 && (sleep_pfds_[0].revents & POLLIN)) drain_wake();
}

bool Progress::drive_channels() {
  assert_driving();
  bool moved = false;
  for (auto& [id, cp] : conns_) {
    Connection* c = cp.get();
    if (!c->error.ok()) continue;
    // chunk_done() never fails c (a frame it cannot queue fails c at the
    // end of the pass: queue_failed), so c->channels stays as it is here.
    for (auto& ch : c->channels) {
      done_.clear();
      Status s = ch->sq->progress(&done_, &moved);
      for (void* o : done_) protocol_.chunk_done(static_cast<Op*>(o));
      if (s.ok()) {
        done_.clear();
        s = ch->rq->progress(&done_, &moved);
        for (void* o : done_) protocol_.chunk_done(static_cast<Op*>(o));
      }
      if (!s.ok()) {
        fail_connection(c, Status(s.code(), "connection " + std::to_string(c->id) + " to " + c->peer.ip +
                                                ": " + s.message()));
        moved = true;
        break;
      }
    }
  }
  return moved;
}

void Progress::flush_all(bool hold_lazy) {
  fail_broken_channels();
  lazy_held_ = false;
  for (auto& [id, c] : conns_) {
    if (!c->error.ok() || !c->control->wants_write()) continue;
    if (hold_lazy && !c->control->has_urgent()) {
      if (c->lazy_pass == 0) c->lazy_pass = pass_no_;
      if (c->lazy_pass == pass_no_) {
        lazy_held_ = true;
        continue;
      }
    }
    c->lazy_pass = 0;
    flush(c.get());
  }
}

Status Progress::write_out(Connection* c) {
  Status s = c->control->flush();
  if (s.ok() && !c->control->wants_write()) c->owed.all_sent();
  return s;
}

void Progress::flush(Connection* c) {
  Status s = write_out(c);
  if (!s.ok()) fail_connection(c, s);
}

void Progress::note_lazy_held() {
  if (acks_held_.load(std::memory_order_relaxed) != lazy_held_) acks_held_.store(lazy_held_);
}

void Progress::add_control_fds(std::vector<pollfd>* fds, std::vector<Connection*>* owners) {
  for (auto& [id, c] : conns_) {
    if (!c->error.ok() || c->draining()) continue;
    short ev = POLLIN;
    if (c->control->wants_write()) ev |= POLLOUT;
    fds->push_back(pollfd{c->control->fd(), ev, 0});
    if (owners != nullptr) owners->push_back(c.get());
  }
}

void Progress::poll_sockets() {
  // With one or two connections, recv() straight away: a poll() that finds
  // data costs a second syscall per message, on the latency path; an empty
  // socket costs one recv() instead of one poll(). More connections share
  // one poll().
  constexpr size_t kDirectReadConns = 2;
  if (conns_.size() <= kDirectReadConns) {
    for (auto& [id, c] : conns_)
      if (c->error.ok() && !c->draining()) on_readable(c.get());
    return;
  }
  pfds_.clear();
  pconns_.clear();
  add_control_fds(&pfds_, &pconns_);
  if (pfds_.empty()) return;
  int n = poll(pfds_.data(), pfds_.size(), 0);
  if (n <= 0) return;
  for (size_t i = 0; i < pfds_.size(); ++i) {
    Connection* c = pconns_[i];
    short re = pfds_[i].revents;
    if (re == 0 || !c->error.ok()) continue;
    if (re & (POLLIN | POLLERR | POLLHUP)) on_readable(c);
    if (c->error.ok() && (re & POLLOUT)) flush(c);
  }
}

Clock::time_point Progress::check_liveness(Clock::time_point now) {
  Clock::time_point next = Clock::time_point::max();
  for (auto& [id, cp] : conns_) {
    Connection* c = cp.get();
    if (!c->error.ok()) continue;
    bool work = c->has_work();
    switch (c->liveness.check(now, work)) {
      case Liveness::Action::kPing:
        queue_frame(c, FrameType::kPing, 0, {});
        break;
      case Liveness::Action::kDead: {
        // Read the socket before believing the silence: this thread may
        // have been away itself (a long pass, a process descheduled under
        // load), with the peer's answer waiting unread. Seen under TSan in
        // CI: a 256 MiB echo's peer declared dead after 4.1 s while alive.
        const uint64_t seen = c->bytes_seen;
        on_readable(c);
        if (!c->error.ok()) continue;      // the read itself ended it
        if (c->bytes_seen != seen) break;  // heard after all
        fail_connection(c, PeerClosed("connection " + std::to_string(c->id) + " to " + c->peer.ip + ":" +
                                      std::to_string(c->peer.port) + ": peer stopped responding (nothing heard for " +
                                      std::to_string(c->liveness.silent_for(now).count()) +
                                      " ms, no answer to a heartbeat; TCPX_PEER_TIMEOUT_MS=" +
                                      std::to_string(d_.peer_timeout_ms) + ")"));
        continue;
      }
      case Liveness::Action::kNone:
        break;
    }
    if (c->error.ok()) next = std::min(next, c->liveness.next_event(work));
  }
  return next;
}

void Progress::on_readable(Connection* c) {
  std::span<Frame> frames;
  Status s = c->control->read_frames(&frames);
  if (c->control->bytes_read() != c->bytes_seen) {
    c->bytes_seen = c->control->bytes_read();
    c->liveness.heard(Clock::now());
    heard_ = true;
  }
  for (auto& f : frames) {
    if (!c->error.ok()) break;
    protocol_.handle_frame(c, f);
  }
  if (!s.ok() && c->error.ok()) {
    Status why(s.code(), "connection " + std::to_string(c->id) + " to " + c->peer.ip + ":" +
                             std::to_string(c->peer.port) + ": " + s.message());
    // A peer that closed in order right after its sends completed (a send
    // through the plugin completes once its bytes left) still has those
    // bytes on the way over the plugin comms: let what is in flight finish
    // before the connection fails (end_drains), or its receive would fail
    // with the data at the door.
    if (c->control->peer_finished() && c->busy()) {
      if (c->peer_gone.ok()) {
        c->peer_gone = why;
        c->drain_until = Clock::now() + std::chrono::milliseconds(std::min(kDrainAfterPeerClose, d_.peer_timeout_ms));
        ++draining_;
        bg_must_look_.store(true);  // a socket fewer to watch
      }
      return;
    }
    fail_connection(c, why);
  }
}

void Progress::end_drains(Clock::time_point now) {
  int left = 0;
  for (auto& [id, cp] : conns_) {
    Connection* c = cp.get();
    if (!c->draining()) continue;
    if (!c->busy() || now >= c->drain_until) fail_connection(c, c->peer_gone);
    else ++left;
  }
  draining_ = left;
}

void Progress::adopt(ConnId id, std::shared_ptr<ConnShared> shared, HandshakeResult&& hs) {
  assert_driving();
  auto c = std::make_unique<Connection>();
  c->id = id;
  c->peer = hs.peer;
  c->shared = std::move(shared);
  c->control = std::move(hs.control);
  c->liveness = Liveness(d_.peer_timeout_ms, Clock::now());
  c->bytes_seen = c->control->bytes_read();
  next_liveness_ = Clock::now();  // schedule this connection's first step
  bg_must_look_.store(true);      // a new socket to watch
  for (auto& comms : hs.channels) {
    auto ch = std::make_unique<Channel>();
    ch->comms = std::move(comms);
    ch->sq = std::make_unique<SendQueue>(d_.transport.get(), ch->comms.send.get());
    ch->rq = std::make_unique<RecvQueue>(d_.transport.get(), ch->comms.recv.get(), ch->comms.recv_dev,
                                         d_.cpu_unpacker, d_.cuda_unpacker, d_.recv_stats);
    c->channels.push_back(std::move(ch));
  }
  Connection* raw = c.get();
  conns_[id] = std::move(c);
  // The peer may send as soon as it has our READY, so the handshake's last
  // read can return frames that follow the peer's READY (a first message, a
  // notification, a request). They wait in the control channel's buffer, and
  // poll() never reports the socket readable for bytes already read: handle
  // them now, or they sit there until the peer happens to send again.
  on_readable(raw);
}

void Progress::send_frame(ConnId id, FrameType type, std::vector<uint8_t> payload) {
  assert_driving();
  auto it = conns_.find(id);
  if (it == conns_.end() || !it->second->error.ok()) return;
  Connection* c = it->second.get();
  queue_frame(c, type, 0, payload);
  // Written now rather than with the pass's flush: a message service may
  // answer in pieces and then work on for milliseconds (the C API's first 16
  // FIFO items of a 1,000-item vector, which NIXL polls for within 5 ms).
  // A write error is sticky in the channel and fails the connection at the
  // end of the pass: failing it here would tear the service down under itself.
  if (c->error.ok() && !write_out(c).ok()) queue_failed(c);
}

Status Progress::serve_messages(ConnId id, Endpoint::MessageService service) {
  assert_driving();
  auto it = conns_.find(id);
  if (it == conns_.end()) return NotFound("unknown connection " + std::to_string(id));
  Connection* c = it->second.get();
  if (c->service.on_message || c->service.on_closed)
    return Busy("connection " + std::to_string(id) + " has a message service already");
  c->service = std::move(service);
  // What arrived before the service: the handshake's leftovers, or messages
  // read while the application had not installed it yet.
  for (auto& m : c->shared->take_messages()) {
    if (!c->error.ok()) break;
    Status s = c->deliver(std::move(m));
    if (!s.ok()) fail_connection(c, s);
  }
  if (!c->error.ok() && c->service.on_closed) std::exchange(c->service, {}).on_closed(c->error);
  return Status::Ok();
}

void Progress::queue_frame(Connection* c, FrameType type, uint64_t id, std::span<const uint8_t> payload,
                           Urgency u) {
  if (!c->error.ok()) return;
  // Written by flush_all() at the end of the pass: frames produced in one
  // pass leave in one send().
  if (!c->control->queue(type, id, payload, u).ok()) queue_failed(c);
}

void Progress::queue_failed(Connection* c) {
  c->frame_refused = true;
  frames_refused_ = true;
}

void Progress::fail_broken_channels() {
  if (!std::exchange(frames_refused_, false)) return;
  // Only the connections that tried to write: a draining one (its peer
  // closed in order) has a failed channel too, and stays until its plugin
  // requests are done.
  for (auto& [id, c] : conns_)
    if (std::exchange(c->frame_refused, false) && c->error.ok())
      fail_connection(c.get(), Status(c->control->error()));
}

void Progress::fail_connection(Connection* c, const Status& s) {
  if (!c->error.ok()) return;
  Status err = s.code() == StatusCode::kOk ? PeerClosed("connection failed") : s;
  TCPX_INFO("connection %llu failed: %s", static_cast<unsigned long long>(c->id), err.to_string().c_str());
  c->error = err;
  bg_must_look_.store(true);  // one socket fewer to watch
  c->shared->fail(err);
  // The service goes with the connection; it hears why, once.
  if (auto service = std::exchange(c->service, {}); service.on_closed) service.on_closed(err);
  // Plugin requests cannot be cancelled: close the comms (which abandons
  // them) before finishing the ops whose buffers they point into.
  c->channels.clear();
  c->unmatched_recvs.clear();
  c->unmatched_announces.clear();
  c->held.clear();
  protocol_.fail_ops(c, err);
  c->control.reset();
}

void Progress::close_connection(ConnId id, const Status& why) {
  assert_driving();
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (it->second->error.ok()) {
    // Let the peer see an orderly EOF after what is already queued.
    (void)it->second->control->flush();
    fail_connection(it->second.get(), why);
  }
  conns_.erase(it);
}

void Progress::start_op(const PostedOp& p) {
  assert_driving();
  auto it = conns_.find(p.conn);
  Status err;
  if (it == conns_.end()) err = NotFound("unknown connection " + std::to_string(p.conn));
  else if (!it->second->error.ok()) err = it->second->error;
  if (!err.ok()) {
    d_.mrs->release(p.mr.id);
    d_.transfers->op_done(p.xfer, p.piece, p.sync, err, 0);
    return;
  }
  protocol_.start_op(it->second.get(), p);
  // A sleeping background thread must wake for the deadline.
  if (p.deadline != kNoDeadline) bg_must_look_.store(true);
}

void Progress::cancel(XferId id, const Status& why) {
  assert_driving();
  protocol_.cancel(id, why);
}

void Progress::set_deadline(XferId id, Clock::time_point when) {
  assert_driving();
  protocol_.set_deadline(id, when);
  bg_must_look_.store(true);
}

void Progress::connection_busy(Connection* /*c*/) {
  // Idle -> busy: the heartbeat pings sooner now, so reschedule it (and tell
  // a background thread asleep on the old deadline).
  next_liveness_ = Clock::time_point::min();
  bg_must_look_.store(true);
}

void Progress::drop_mr(MrId id) {
  assert_driving();
  for (auto& [cid, c] : conns_)
    for (auto& ch : c->channels) {
      ch->send_mrs.drop(id);
      ch->recv_mrs.drop(id);
    }
}

}  // namespace tcpx::engine
