// Progress: the endpoint's progress loop. It owns every Connection (control
// channel, plugin comms and their request queues) and the transfer protocol
// (engine/protocol.h, which owns the in-flight Ops). Whoever holds the
// progress token (drive_mu_) may touch that state; no other lock guards it.
//
// Who drives (UCX's worker-progress model):
//  - An application thread blocked in wait() (or a blocking call) becomes a
//    guest: it takes the token and runs passes itself, busy-polling up to the
//    configured spin budget, so a small transfer completes without any
//    cross-thread wake-up. poll_async() and Endpoint::progress() run one pass
//    when the token is free; a post made while the token is free starts its
//    ops on the posting thread at once.
//  - The background thread drives whenever no guest does: it serves what the
//    application never waits for (a peer's reads and writes, acks, FIFO
//    answers, notifications, heartbeats) and finishes the transfers nobody is
//    waiting on. While a guest is present it parks on its eventfd, and after
//    the last guest left for as long as the application keeps coming back
//    within microseconds (app_returns_soon: a window of waits); otherwise a
//    guest leaving with plugin requests in flight wakes it, and so does a
//    guest that gives up spinning or a waiter that sleeps at once (the
//    plugin moves bytes only inside test(), and only our passes see the
//    answer). A guest that finds the token taken for a while sleeps until
//    it is let go (release_token), bounded by its spin budget. After serving a
//    peer while the application stays away, it may poll the sockets for up
//    to the spin budget before it sleeps on them (loop).
//
// Each pass: run queued commands, drive every channel's request queues (post,
// test the head, unpack, consume), heartbeats, write queued control frames,
// then read the control sockets (poll with timeout 0). The background thread
// sleeps in poll only between passes and without the token, so a guest is
// never held up by a sleeping thread; an idle endpoint costs no CPU.
//
// Lock order (outer to inner): drive_mu_ (the token) -> cmd_mu_; the token
// holder may take MrTable, TransferTable and ConnShared locks (leaves, taken
// for a moment, never while calling back into Progress). handover_mu_ is
// taken without the token; under it a guest only try_locks the token.
#ifndef TCPX_ENGINE_PROGRESS_H_
#define TCPX_ENGINE_PROGRESS_H_

#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/connection.h"
#include "engine/core_contention.h"
#include "engine/op.h"
#include "engine/protocol.h"
#include "engine/spin_policy.h"
#include "engine/transfer_table.h"
#include "engine/wire.h"

namespace tcpx::engine {

class Progress : private LoopHooks {
 public:
  explicit Progress(ProgressDeps deps);
  ~Progress();  // stops the thread and fails everything still running
  Status start();
  void stop();

  // ---- Any thread -----------------------------------------------------------
  // Runs fn in order with other posts and submits, by whichever thread drives
  // next. Never blocks.
  void post(std::function<void()> fn);
  // Starts user ops: on the calling thread when the token is free (after any
  // queued commands, so order is kept), else queued. Never blocks.
  void submit(std::span<const PostedOp> ops);
  // A blocking receive whose message may be here already: when the token is
  // free, no receive posted before it is still unmatched and the oldest
  // unmatched send on conn came inline (SEND_EAGER) and fits, copies it into
  // op's buffer and returns true with its size in *bytes (the send's ack
  // queued). Otherwise false, and op is to be posted as usual. op's region
  // is the caller's to release either way. Never blocks.
  bool receive_now(const PostedOp& op, uint64_t* bytes);
  // Sends a control frame: on the calling thread when the token is free
  // (after any queued commands, so order is kept; it leaves before this
  // returns), else posted. Never blocks.
  void send_now(ConnId id, FrameType type, std::vector<uint8_t> payload);
  // Takes the token (waiting for the pass in progress), runs queued commands,
  // then fn, and flushes. fn must not block. Refused (BUSY) on the loop
  // itself, i.e. from a message service: the token is not recursive.
  // TIMED_OUT if the token is not free within 10 s (a pass that blocks).
  Status run_sync(const std::function<void()>& fn);
  // One pass on the calling thread if nobody else is driving. Returns whether
  // it ran; *moved tells whether anything happened. wait_until: a guest whose
  // spin kept finding the token taken sleeps until the holder lets go of it
  // (the background thread does so after its pass, seeing the guest), or
  // until then at the latest (a holder that blocks must not hang a wait).
  // now: the caller's clock reading just before, if it has one (a pass that
  // moves no data uses it instead of reading the clock again).
  bool try_pass(bool* moved = nullptr, Clock::time_point wait_until = {}, Clock::time_point now = {});
  // An application thread is about to sleep on a transfer without having
  // driven (its spin budget was 0): only a pass of the background thread
  // will finish it now, so that thread must watch the sockets rather than
  // linger parked (as it does when a guest gives up spinning).
  void waiter_sleeps();

  // Whether the calling thread holds the token (a message service runs so).
  bool on_loop() const { return driver_.load(std::memory_order_relaxed) == std::this_thread::get_id(); }

  // An application thread that is about to drive (a waiter). While any guest
  // exists the background thread stays parked, so the guest's passes run
  // without competition for the token or the cores.
  class Guest {
   public:
    // now: the caller's clock reading, if it has one (a wait does): it
    // tells how soon the application came back after its last wait.
    explicit Guest(Progress* p, Clock::time_point now = {}) : p_(p) {
      p_->guests_.fetch_add(1);
      p_->guest_came_.store(true, std::memory_order_relaxed);
      if (now != Clock::time_point{}) p_->note_guest_return(now);
    }
    ~Guest() { p_->leave_guest(lazy_, done_at_); }
    // The guest's work is done at `now`: its departure need not wake the
    // background thread at once (see hand_back).
    void done(Clock::time_point now) {
      lazy_ = true;
      done_at_ = now;
    }
    Guest(const Guest&) = delete;
    Guest& operator=(const Guest&) = delete;

   private:
    Progress* p_;
    bool lazy_ = false;
    Clock::time_point done_at_{};
  };

  // ---- Called by the token holder only (from posted closures) -------------
  void adopt(ConnId id, std::shared_ptr<ConnShared> shared, HandshakeResult&& hs);
  void start_op(const PostedOp& p);
  // Endpoint::cancel and set_timeout (Protocol::cancel, set_deadline).
  void cancel(XferId id, const Status& why);
  void set_deadline(XferId id, Clock::time_point when);
  void send_frame(ConnId id, FrameType type, std::vector<uint8_t> payload);
  // Installs c's message service (Endpoint::serve_messages).
  Status serve_messages(ConnId id, Endpoint::MessageService service);
  void close_connection(ConnId id, const Status& why);
  void drop_mr(MrId id);

 private:
  enum class BgState { kRunning, kSleeping, kParked };
  struct Command {
    PostedOp op;               // used when fn is empty
    std::function<void()> fn;  // empty for a user op (no allocation per op)
  };
  void loop();
  // With the token held by a thread outside the loop (drive_if_free,
  // run_sync): runs the queued commands, then work(), flushes the frames if
  // work() returns true or commands ran, and publishes what the background
  // thread must know (plugin requests in flight, acks held back). The caller
  // hands back.
  template <class Work>
  void drive_held(Work&& work);
  // When the token is free (and this is not the loop): takes it, runs
  // drive_held(work), lets it go and hands back lazily. False, with work
  // not run, otherwise.
  template <class Work>
  bool drive_if_free(Work&& work);
  // One pass (token held). Returns whether anything moved.
  // hold_lazy: lone acks may wait one pass for company (flush_all). An
  // application thread's pass holds them, as its next send may carry them;
  // the background thread's does not: no send of the application follows
  // it, and held acks only cost it another poll() and pass to send them.
  bool pass(bool hold_lazy, Clock::time_point now = {});
  // Whether there were any.
  bool run_commands();
  bool drive_channels();
  void poll_sockets();
  // Writes every connection's queued frames, except (with hold_lazy) lazy
  // frames alone (acks) queued in this very pass: those wait one pass for
  // company (see Connection::lazy_pass). Sets lazy_held_ when it held some
  // back.
  void flush_all(bool hold_lazy = true);
  // A pass is coming soon without anyone asking: a guest drives, or the
  // background thread runs or is parked (back within kParkSlice). Only a
  // background thread asleep on the sockets needs a reason to come.
  bool next_pass_soon() const { return guests_.load() > 0 || bg_state_.load() != BgState::kSleeping; }
  // Writes what c's socket takes; when everything left, so did every
  // request queued (OwedReplies::all_sent). The one place a connection's
  // buffer is written. write_out() leaves a write error sticky in the
  // channel (for a caller inside a frame handler); flush() fails c with it.
  Status write_out(Connection* c);
  void flush(Connection* c);
  // Publishes lazy_held_ for hand_back(): held-back acks need the background
  // thread when it sleeps on the sockets (parked, it looks again within
  // kParkSlice anyway, so a guest leaving does not wake it for them).
  void note_lazy_held();
  // Sets work_pending_, with a (sequentially consistent) store only when it
  // changes: written under the token only, so the holder's own read is
  // current, and a value left in place was published when first stored.
  void publish_work_pending(bool busy) {
    if (work_pending_.load(std::memory_order_relaxed) != busy) work_pending_.store(busy);
  }
  bool any_busy() const;
  // Background thread, without the token: park() waits on the eventfd for
  // up to kParkSlice, for as long as its reason holds: a guest drives
  // (kGuest); between the waits of an application that keeps coming back,
  // while nothing needs us (kLinger); a guest's wait ended during the last
  // slice, so the application will be back, unless commands wait
  // (kAppDriving). Returns whether we must drive now (woken, or commands
  // waiting for kAppDriving).
  // sleep_on_sockets() (called with the token, which it releases) waits
  // until a socket, a command, a changed socket set or the timeout needs us.
  enum class ParkFor { kGuest, kLinger, kAppDriving };
  bool park(ParkFor why);
  void sleep_on_sockets(std::unique_lock<std::mutex>& token, int timeout_ms);
  void wake_bg();
  void drain_wake();  // background thread: consume the eventfd's count
  // Appends a pollfd per working control connection (POLLOUT while it has
  // bytes to write) and, if owners is given, the connection of each.
  void add_control_fds(std::vector<pollfd>* fds, std::vector<Connection*>* owners);
  // Marks the calling thread as the token holder for assert_driving() while
  // it lives; the caller holds drive_mu_.
  class Driving {
   public:
    // Relaxed: only the thread that stored its id compares it (on_loop).
    explicit Driving(Progress* p) : p_(p) { p_->driver_.store(std::this_thread::get_id(), std::memory_order_relaxed); }
    ~Driving() { p_->driver_.store(std::thread::id(), std::memory_order_relaxed); }
    Driving(const Driving&) = delete;
    Driving& operator=(const Driving&) = delete;

   private:
    Progress* p_;
  };
  // After a non-background driver released the token, or a guest left: wake
  // the background thread if it must take over now. lazy: the caller is done
  // for now, so a background thread parked for a guest may take its time
  // (at most kParkSlice) unless work only it would notice is waiting.
  void hand_back(bool lazy = false);
  // Sets app_active_; read first, so that a waiter's spin (a try_pass per
  // iteration) does not write the shared cache line each time.
  void note_app_active() {
    if (!app_active_.load(std::memory_order_relaxed)) app_active_.store(true, std::memory_order_relaxed);
  }
  void leave_guest(bool lazy, Clock::time_point done_at);
  // How soon the application comes back to wait after a wait that ended
  // with its transfer done: a moving average of those gaps (each counted up
  // to kReturnGapCapUs). Under kReturnSoonUs it is in a run of waits (a
  // window of transfers) and drives again itself, so the background thread
  // stays off the token (hand_back, loop); otherwise, say with compute
  // between its waits, the background thread takes over what is in flight
  // as soon as a guest leaves. Only waits that spun count; an application
  // that never waits keeps the long default.
  void note_guest_return(Clock::time_point now);
  bool app_returns_soon() const { return return_gap_us_.load(std::memory_order_relaxed) < kReturnSoonUs; }
  static constexpr int kReturnSoonUs = 50;
  static constexpr int kReturnGapCapUs = 1000;
  // Unlocks the token and wakes the guests waiting for it.
  void release_token(std::unique_lock<std::mutex>& token);
  // Waits (token not held) until the token is let go or until; returns
  // whether it now holds it.
  bool wait_for_token(std::unique_lock<std::mutex>& token, Clock::time_point until);
  void assert_driving() const;
  void on_readable(Connection* c);
  // Fails the connections whose peer closed in order (on_readable) once
  // their plugin requests are done or their drain time is up.
  void end_drains(Clock::time_point now);
  // Pings silent peers and fails those that stopped answering (liveness.h);
  // returns when the next heartbeat step is due.
  Clock::time_point check_liveness(Clock::time_point now);

  // LoopHooks, for the protocol.
  void queue_frame(Connection* c, FrameType type, uint64_t id, std::span<const uint8_t> payload,
                   Urgency u = Urgency::kNow) override;
  void queue_failed(Connection* c) override;
  void fail_connection(Connection* c, const Status& s) override;
  // Fails the connections that could not queue or write a frame since the
  // last call (queue_failed, send_frame); at the end of every pass.
  void fail_broken_channels();
  void connection_busy(Connection* c) override;

  ProgressDeps d_;
  Protocol protocol_{d_, *this};
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  std::atomic<bool> wake_sent_{false};  // wake_fd_ written and not yet drained

  // The token, and who wants it. bg_state_ is written by the background
  // thread only; guests_, work_pending_ are read by it before it sleeps, and
  // their writers read bg_state_ after writing (seq_cst on both sides, so one
  // of the two always sees the other and no wake-up is lost).
  std::mutex drive_mu_;
  std::atomic<int> guests_{0};
  // A guest arrived since the background thread last looked: the
  // application is in a run of waits, and the thread lingers (park) rather
  // than sleeping on the sockets between them.
  std::atomic<bool> guest_came_{false};
  // A guest left without its work done (it gave up spinning and now sleeps
  // until the transfer is final) since the background thread last looked:
  // that sleeper needs the sockets watched, not a linger (loop).
  std::atomic<bool> guest_gave_up_{false};
  std::atomic<bool> work_pending_{false};  // plugin requests in flight
  // An application thread posted (submit) or polled (try_pass) since the
  // background thread last looked: it is at work here and will come back
  // to drive, so the background thread does not spin for the next frame.
  std::atomic<bool> app_active_{false};
  // A guest left with its transfer done since the background thread last
  // parked for one: with app_returns_soon(), the application is in a run of
  // waits and will drive again (loop, ParkFor::kAppDriving).
  std::atomic<bool> guest_done_{false};
  std::atomic<int64_t> last_done_ns_{0};  // when the last wait ended done; 0: counted
  std::atomic<int> return_gap_us_{kReturnGapCapUs};
  // Another driver changed what the background thread sleeps on (sockets,
  // heartbeat deadline) since it built its sleep set.
  std::atomic<bool> bg_must_look_{false};
  std::atomic<bool> acks_held_{false};  // lazy frames held back (flush_all)
  std::atomic<BgState> bg_state_{BgState::kRunning};
  // Guests sleeping until the token is let go (try_pass with wait_until):
  // every driver unlocks through release_token, which wakes them.
  std::mutex handover_mu_;
  std::condition_variable handover_cv_;
  uint64_t handovers_ = 0;  // guarded by handover_mu_
  std::atomic<int> handover_waiters_{0};
  std::atomic<std::thread::id> driver_{};  // debug: the token holder
  std::vector<pollfd> sleep_pfds_;         // background thread only

  std::mutex cmd_mu_;
  std::atomic<bool> has_cmds_{false};
  std::vector<Command> cmds_;
  std::vector<Command> running_cmds_;

  std::unordered_map<ConnId, std::unique_ptr<Connection>> conns_;
  std::vector<void*> done_;  // reused buffer of finished chunk owners
  std::vector<pollfd> pfds_;
  std::vector<Connection*> pconns_;
  uint64_t pass_no_ = 1;     // passes run so far, plus one
  bool lazy_held_ = false;   // the last flush_all() held lazy frames back
  bool frames_refused_ = false;  // some Connection::frame_refused is set
  // Background thread, plugin requests in flight: the current stall (passes
  // in a row that moved nothing) and how the loop waits it out (loop).
  SpinEpisode stall_;
  int yield_passes_ = 0;  // passes of this stall past its spinning part
  SpinPolicy stall_policy_;
  CoreContention core_;  // whether stalls find our core shared
  // Background thread, nothing in flight after it served a peer's frames:
  // the gap until the next ones, spent polling the sockets or asleep on
  // them (loop).
  SpinEpisode idle_;
  SpinPolicy idle_policy_;
  Clock::time_point app_seen_at_{};  // the application last seen at work here
  bool heard_ = false;  // on_readable read bytes in this pass
  // try_pass calls refused the token: a spinning wait ends when this moves.
  std::atomic<uint32_t> refused_passes_{0};
  int passes_since_poll_ = 0;
  int draining_ = 0;  // connections whose peer closed in order, still draining
  Clock::time_point last_control_poll_{};
  Clock::time_point next_liveness_{};  // when check_liveness() has work
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_PROGRESS_H_
