// Connection state. ConnShared is what user threads may touch (sticky error,
// incoming application messages); Connection is owned by the progress thread
// alone (control channel, plugin comms, request queues, matching state).
#ifndef TCPX_ENGINE_CONNECTION_H_
#define TCPX_ENGINE_CONNECTION_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "engine/comm_queue.h"
#include "engine/control_channel.h"
#include "engine/handshake.h"
#include "engine/liveness.h"
#include "engine/mr_table.h"
#include "engine/owed_replies.h"
#include "engine/vector_queue.h"
#include "tcpx/endpoint.h"

namespace tcpx::engine {

class ConnShared {
 public:
  // max_bytes: Config::max_undelivered_bytes (each message counts its size
  // + kMessageOverhead).
  explicit ConnShared(uint64_t max_bytes = UINT64_MAX) : max_bytes_(max_bytes) {}
  static constexpr uint64_t kMessageOverhead = 64;
  // OK while the connection works; the sticky error after.
  Status error() const {
    if (!failed_.load(std::memory_order_acquire)) return Status::Ok();  // every post asks: no lock
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }
  void fail(const Status& s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.ok()) error_ = s;
      failed_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }
  // Queues a message for recv_message. PROTOCOL_ERROR, and nothing queued,
  // when the undelivered ones would exceed the cap: the caller fails the
  // connection (the messages queued before stay readable).
  Status push_message(std::vector<uint8_t> m) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Messages leave from the front only (pop_message, take_messages): the
      // costs beyond the messages still queued are those of messages taken.
      while (costs_.size() > messages_.size()) {
        message_bytes_ -= costs_.front();
        costs_.pop_front();
      }
      uint64_t cost = m.size() + kMessageOverhead;
      if (message_bytes_ + cost > max_bytes_)
        return ProtocolError("peer overran the message queue: " + std::to_string(messages_.size()) +
                             " messages (" + std::to_string(message_bytes_) +
                             " bytes) undelivered, recv_message is not keeping up (TCPX_MAX_UNDELIVERED_BYTES=" +
                             std::to_string(max_bytes_) + ")");
      message_bytes_ += cost;
      costs_.push_back(cost);
      messages_.push_back(std::move(m));
    }
    cv_.notify_all();
    return Status::Ok();
  }
  Status pop_message(std::vector<uint8_t>* out, int timeout_ms);
  // Everything queued, for a message service installed late.
  std::deque<std::vector<uint8_t>> take_messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(messages_, {});
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Status error_;
  std::atomic<bool> failed_{false};  // error_ is set: error() reads it under mu_
  std::deque<std::vector<uint8_t>> messages_;
  std::deque<uint64_t> costs_;  // per message pushed and not yet accounted as taken
  uint64_t message_bytes_ = 0;  // sum of costs_: what messages_ costs against max_bytes_
  const uint64_t max_bytes_;
};

struct Op;  // engine/op.h

// One plugin channel: a send comm and a recv comm with their queues and
// plugin registrations. Member order matters: queues and registrations are
// destroyed before the comms they live on.
struct Channel {
  ChannelComms comms;
  PluginMrCache send_mrs;
  PluginMrCache recv_mrs;
  std::unique_ptr<SendQueue> sq;
  std::unique_ptr<RecvQueue> rq;
  ~Channel() {
    sq.reset();
    rq.reset();
    send_mrs.clear();
    recv_mrs.clear();
  }
};

// What a notification costs against Config::max_undelivered_bytes.
inline uint64_t notification_cost(const Notification& n) { return n.name.size() + n.msg.size() + 64; }

struct HeldNotification {
  uint64_t barrier = 0;  // incoming transfers [0, barrier) must be complete
  Notification n;
};

struct Connection {
  ConnId id = 0;
  PeerInfo peer;
  std::shared_ptr<ConnShared> shared;
  std::unique_ptr<ControlChannel> control;
  std::vector<std::unique_ptr<Channel>> channels;
  Status error;  // sticky, mirrors shared->error()
  // The peer closed the control connection in order while plugin requests
  // were in flight: set to the error the connection will fail with once
  // they are done or drain_until passed (Progress::end_drains). Until then
  // the plugin comms keep delivering what the peer sent before it closed.
  Status peer_gone;
  Clock::time_point drain_until{};
  bool draining() const { return !peer_gone.ok() && error.ok(); }
  // A frame could not be queued or written (the control channel keeps why):
  // the connection fails at the end of the pass (Progress::fail_broken_channels).
  bool frame_refused = false;

  // Two-sided matching: posted receives and the peer's announced sends, each
  // in order; the oldest of one matches the oldest of the other.
  VectorQueue<Op*> unmatched_recvs;
  struct Announce {
    uint64_t peer_id;
    uint64_t size;
    bool eager;                 // the bytes came inline (SEND_EAGER)
    std::vector<uint8_t> data;  // those bytes
    // What holding it costs, against Config::max_unmatched_bytes.
    uint64_t held_bytes() const { return data.size() + 64; }
  };
  VectorQueue<Announce> unmatched_announces;
  uint64_t unmatched_bytes = 0;  // sum of held_bytes() over unmatched_announces

  // Incoming transfers are numbered in DATA order; a notification waits until
  // every transfer numbered before its arrival has completed.
  uint64_t incoming_next = 0;
  // Numbers of incoming transfers not completed, ascending (they are handed
  // out in order): a vector, as a set allocated a node per transfer.
  std::vector<uint64_t> incoming_pending;
  std::deque<HeldNotification> held;
  uint64_t held_bytes = 0;  // notification_cost() of each in held

  // Our requests the peer has yet to answer (Progress::submit's batching).
  OwedReplies owed;

  uint32_t next_first_channel = 0;  // striping start, rotated per transfer
  // Plugin requests queued or in flight on this connection's comms.
  bool busy() const {
    for (const auto& c : channels)
      if (!c->sq->idle() || !c->rq->idle()) return true;
    return false;
  }

  // Answers this connection's messages on the progress path when set
  // (Endpoint::serve_messages); otherwise they queue in shared.
  Endpoint::MessageService service;
  // One application message: to the service, else to the queue (within
  // TCPX_MAX_UNDELIVERED_BYTES). An error fails the connection.
  Status deliver(std::vector<uint8_t> m) {
    return service.on_message ? service.on_message(std::move(m)) : shared->push_message(std::move(m));
  }

  // The pass in which flush_all() first held back this connection's lazy
  // frames (0: none held); they leave with the next pass at the latest.
  uint64_t lazy_pass = 0;

  // Heartbeat state, and the ops (ours or served for the peer) that wait on
  // this connection: with any, a silent peer is pinged sooner.
  Liveness liveness;
  uint64_t bytes_seen = 0;  // control->bytes_read() when last looked at
  size_t live_ops = 0;
  bool has_work() const { return live_ops > 0 || busy(); }
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_CONNECTION_H_
