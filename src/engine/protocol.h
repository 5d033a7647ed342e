// Protocol: the transfer protocol of docs/design.md section 9 on top of the
// connections the progress loop owns: user ops, the frame handlers, two-sided
// matching, the target side of one-sided requests, chunk completion and
// notification ordering. It owns every in-flight Op.
//
// It runs only on the progress-token holder (engine/progress.h), called by
// the loop; it reaches back into the loop only through LoopHooks (queue a
// control frame, fail a connection, heartbeat scheduling).
#ifndef TCPX_ENGINE_PROTOCOL_H_
#define TCPX_ENGINE_PROTOCOL_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <span>
#include <utility>
#include <vector>

#include "engine/chunk_schedule.h"
#include "engine/connection.h"
#include "engine/inline_staging.h"
#include "engine/op.h"
#include "engine/op_table.h"
#include "engine/transfer_table.h"
#include "engine/wire.h"

namespace tcpx::engine {

struct ProgressDeps {
  std::shared_ptr<net::Transport> transport;
  MrTable* mrs = nullptr;
  TransferTable* transfers = nullptr;
  unpack::Unpacker* cpu_unpacker = nullptr;
  unpack::Unpacker* cuda_unpacker = nullptr;
  RecvPathStats* recv_stats = nullptr;
  uint64_t chunk_bytes = 1 << 20;
  uint64_t eager_bytes = 16 << 10;
  // A peer silent this long (no answer to a PING) is declared dead.
  int peer_timeout_ms = 5000;
  // Per connection: bytes of sends held for receives not yet posted
  // (Config::max_unmatched_bytes).
  uint64_t max_unmatched_bytes = 16 << 20;
  // Notifications released in order land here (the endpoint's queue)...
  std::function<void(Notification&&)> deliver_notification;
  // ... whose cost (notification_cost) is this; with what a connection holds
  // back for ordering, at most max_undelivered_bytes.
  const std::atomic<uint64_t>* queued_notification_bytes = nullptr;
  uint64_t max_undelivered_bytes = 64 << 20;
  // Config::spin_us: how long the background thread polls the sockets for a
  // peer's next request after serving some before it sleeps; 0 also makes
  // it yield its core at once when plugin transfers stall (Progress::loop).
  int spin_us = 200;
};

// What the protocol needs from the loop that owns the connections.
class LoopHooks {
 public:
  virtual ~LoopHooks() = default;
  // Appends a control frame; it leaves with the pass's flush. A lazy one (an
  // ack) may wait one pass for an urgent frame to share its send(). A frame
  // that cannot be queued (the peer stopped reading: the backlog cap; or the
  // channel already failed) fails the connection at the end of the pass, as
  // queue_failed() does, never inside this call.
  virtual void queue_frame(Connection* c, FrameType type, uint64_t id, std::span<const uint8_t> payload,
                           Urgency u = Urgency::kNow) = 0;
  // The protocol's own ControlChannel::queue* on c failed (the channel keeps
  // the error). The connection fails at the end of the pass: its caller may
  // be finishing a chunk inside the loop over c's channels, or hold an op
  // that failing the connection would destroy.
  virtual void queue_failed(Connection* c) = 0;
  // Closes c's comms and fails its ops (through Protocol::fail_ops), now:
  // for what is found while reading c's frames, never while c's ops or
  // channels are being walked.
  virtual void fail_connection(Connection* c, const Status& s) = 0;
  // c went from no live op to one: its heartbeat now pings sooner.
  virtual void connection_busy(Connection* c) = 0;
};

class Protocol {
 public:
  Protocol(const ProgressDeps& deps, LoopHooks& loop)
      : d_(deps), loop_(loop), staging_(deps.cuda_unpacker, deps.eager_bytes) {}

  // A user op on a working connection.
  void start_op(Connection* c, const PostedOp& p);
  // Progress::receive_now on a working connection: completes receive p at
  // once from a held inline send, without making it an op. False when it
  // would not match at once or needs more than a host copy.
  bool receive_held(Connection* c, const PostedOp& p, uint64_t* bytes);
  // A frame read from c's control connection after the handshake.
  void handle_frame(Connection* c, Frame& f);
  // A chunk request of op's (plugin isend/irecv) completed.
  void chunk_done(Op* op);
  // Moves on the ops whose inline copy to or from device memory finished
  // (staged()). True when any did.
  bool poll_staging();
  bool staging_busy() const { return staging_.busy(); }
  // c failed (its comms are already closed): every op on it ends with err.
  void fail_ops(Connection* c, const Status& err);

  // Cancel and deadlines (Endpoint::cancel, set_timeout). A transfer's ops
  // end with `why` (CANCELLED or TIMED_OUT) where that is still possible;
  // see cancel_op for where it is not.
  void cancel(XferId xfer, const Status& why);
  void set_deadline(XferId xfer, std::chrono::steady_clock::time_point when);
  // Cancels the ops whose deadline passed, with TIMED_OUT.
  void expire(std::chrono::steady_clock::time_point now);
  // The earliest deadline of a live op (kNoDeadline when none).
  std::chrono::steady_clock::time_point next_deadline() const {
    return deadlines_.empty() ? kNoDeadline : deadlines_.top().first;
  }

 private:
  void on_announce(Connection* c, const Frame& f);
  void on_cts(Connection* c, const Frame& f);
  void on_reject(Connection* c, const Frame& f);
  void on_data(Connection* c, const Frame& f);
  void on_write_req(Connection* c, const Frame& f);
  void on_write_ack(Connection* c, const Frame& f);
  void on_read_req(Connection* c, const Frame& f);
  void on_notify(Connection* c, const Frame& f);
  // An application message: to the connection's service, else its queue.
  void on_message(Connection* c, Frame& f);
  void on_send_eager(Connection* c, Frame& f);
  // Holds an announced send until a receive is posted, within
  // max_unmatched_bytes; past it the send is refused with BUSY.
  void hold_announce(Connection* c, Connection::Announce a);
  void on_write_inline(Connection* c, const Frame& f);
  void on_read_inline(Connection* c, const Frame& f);
  // The peer withdraws a send it announced (its cancel or deadline).
  void on_cancel(Connection* c, const Frame& f);
  // Ends op with why if it still waits for the peer's application: an
  // unmatched receive at once; a send or write still waiting for the
  // peer's CTS when that answer comes (the peer is told: CANCEL for a send
  // it holds unmatched, REJECT for a CTS). Anything else, whose data moves
  // or is answered without the peer application's help, ends as it would:
  // posted plugin requests cannot be withdrawn, and every chunk the peer
  // expects must flow for the channels to stay in step.
  void cancel_op(Op* op, const Status& why);
  void watch_deadline(Op* op);
  // Copies inline bytes into a local host buffer (never device memory: see
  // protocol.cc).
  static Status copy_in(const MrInfo& mr, void* dst, const uint8_t* src, size_t n);
  // Target side of a write: the serving op (it holds mr).
  Op* new_serve_write(Connection* c, uint64_t peer_id, const FifoFields& fields, const MrInfo& mr, uint64_t size);
  // Starts uploading inline bytes into op's device memory; op then counts
  // as incoming data for notification order, and ends (with an ack to the
  // peer) in staged(). False when no upload could start.
  bool upload_inline(Connection* c, Op* op, const uint8_t* src, size_t n);
  // Starts copying op's device memory (a write's source, a served read's
  // region) into staging; its frame leaves from staged(). False when no
  // copy could start.
  bool download_inline(Op* op);
  // op's copy finished: an upload's op ends and is acknowledged, a
  // download's frame is queued from the staged bytes.
  void staged(Op* op, const InlineStaging::Done& d);
  // Decodes a one-sided request's FifoItem, checks it was advertised for c
  // and acquires the region it names.
  Status acquire_advertised(Connection* c, const FifoItem& item, uint64_t size, FifoFields* fields, MrInfo* mr);
  // Pairs the oldest posted receives with the oldest held sends.
  void try_match(Connection* c);
  // Answers a's send into op: copies its eager bytes (host memory) or
  // uploads them (device memory), else asks for them (CTS). eager_bytes:
  // a.data, or the SEND_EAGER frame's bytes where they were read.
  void match(Connection* c, Op* op, const Connection::Announce& a, std::span<const uint8_t> eager_bytes);
  // Queues op's request frame; it counts in c->owed until answered().
  void queue_request(Op* op, FrameType type, std::span<const uint8_t> header, const uint8_t* data = nullptr,
                     size_t len = 0, uint8_t flags = 0);
  // The peer's reply to op's request arrived (or op ends without one).
  static void answered(Op* op);
  void start_sending(Op* op, uint64_t token);
  void start_receiving(Op* op, const DataPayload& d);
  // The plugin request for chunk ch of op, its window registered with the
  // channel's send or receive comm (cached: registering a window again is a
  // lookup).
  enum class ChunkSide { kSend, kRecv };
  Status chunk_request(Op* op, const Chunk& ch, ChunkSide side, ChunkReq* r);
  // op's data starts flowing to us: it is numbered for notification order
  // (a notification arriving later waits for it).
  void begin_incoming(Connection* c, Op* op);
  void data_done(Op* op);
  void finish(Op* op, const Status& s);
  void release_notifications(Connection* c);
  // WRITE_ACK with s (lazy: it rides in the next send()).
  void ack(Connection* c, uint64_t id, const Status& s);
  void reject(Connection* c, uint64_t id, const Status& s);
  Op* find_op(Connection* c, uint64_t id, const Frame& f);
  static bool known_to_peer(const Op* op);
  Op* new_op(Connection* c, OpKind kind);

  const ProgressDeps& d_;
  LoopHooks& loop_;
  OpTable ops_;
  // (deadline, op id), earliest first; entries of ops that ended or got a
  // new deadline are skipped when they come up.
  using DeadlineEntry = std::pair<std::chrono::steady_clock::time_point, uint64_t>;
  std::priority_queue<DeadlineEntry, std::vector<DeadlineEntry>, std::greater<>> deadlines_;
  InlineStaging staging_;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_PROTOCOL_H_
