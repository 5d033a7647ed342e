// Progress: the endpoint's engine thread. It owns every Connection and every
// in-flight Op; user threads reach it only through post()/run_sync(), so the
// state below is touched by one thread and needs no locks.
//
// Each pass: run queued commands, drive every channel's request queues (post,
// test the head, unpack, consume), then poll the control sockets and the wake
// eventfd. While plugin requests are in flight the poll does not block (the
// plugin progresses only inside test()), backing off to short sleeps when
// nothing moves; when idle it blocks in poll until a socket or a command wakes
// it, so an idle endpoint costs no CPU.
#ifndef TCPX_ENGINE_PROGRESS_H_
#define TCPX_ENGINE_PROGRESS_H_

#include <poll.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/connection.h"
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
  uint64_t eager_bytes = 64 << 10;
  // A peer silent this long (no answer to a PING) is declared dead.
  int peer_timeout_ms = 5000;
  // Notifications released in order land here (the endpoint's queue).
  std::function<void(Notification&&)> deliver_notification;
};

// A user request handed to the progress thread.
struct PostedOp {
  OpKind kind = OpKind::kSend;
  ConnId conn = 0;
  XferId xfer = 0;
  size_t piece = 0;
  MrInfo mr;  // acquired by the caller; released when the op ends
  uint8_t* data = nullptr;
  uint64_t size = 0;
  FifoItem remote{};
};

class Progress {
 public:
  explicit Progress(ProgressDeps deps);
  ~Progress();  // stops the thread and fails everything still running
  Status start();
  void stop();

  // Runs fn on the progress thread (soon). Never blocks.
  void post(std::function<void()> fn);
  // Runs fn on the progress thread and waits for it (fn must not block).
  void run_sync(const std::function<void()>& fn);

  // ---- Called on the progress thread only (from posted closures) ----------
  void adopt(ConnId id, std::shared_ptr<ConnShared> shared, HandshakeResult&& hs);
  void start_op(const PostedOp& p);
  void send_frame(ConnId id, FrameType type, std::vector<uint8_t> payload);
  void close_connection(ConnId id, const Status& why);
  void drop_mr(MrId id);

 private:
  void loop();
  void run_commands();
  bool drive_channels();
  void poll_sockets(int timeout_ms);
  void flush_all();
  bool has_commands();
  void on_readable(Connection* c);
  // Pings silent peers and fails those that stopped answering (liveness.h);
  // returns when the next heartbeat step is due.
  Clock::time_point check_liveness(Clock::time_point now);

  // protocol.cc: frames and transfer steps.
  void handle_frame(Connection* c, Frame& f);
  void on_announce(Connection* c, const Frame& f);
  void on_cts(Connection* c, const Frame& f);
  void on_reject(Connection* c, const Frame& f);
  void on_data(Connection* c, const Frame& f);
  void on_write_req(Connection* c, const Frame& f);
  void on_write_ack(Connection* c, const Frame& f);
  void on_read_req(Connection* c, const Frame& f);
  void on_notify(Connection* c, const Frame& f);
  void on_send_eager(Connection* c, Frame& f);
  void on_write_inline(Connection* c, const Frame& f);
  void on_read_inline(Connection* c, const Frame& f);
  // Copies inline bytes into a local buffer (host memcpy or CUDA upload).
  Status copy_in(const MrInfo& mr, void* dst, const uint8_t* src, size_t n);
  void try_match(Connection* c);
  void start_sending(Op* op, uint64_t token);
  void start_receiving(Op* op, const DataPayload& d);
  void chunk_done(Op* op);
  void data_done(Op* op);
  void finish(Op* op, const Status& s);
  void release_notifications(Connection* c);
  void queue_frame(Connection* c, FrameType type, uint64_t id, const std::vector<uint8_t>& payload);
  void reject(Connection* c, uint64_t id, const Status& s);
  Op* find_op(Connection* c, uint64_t id, const Frame& f);
  static bool known_to_peer(const Op* op);
  Op* new_op(Connection* c, OpKind kind);
  void fail_connection(Connection* c, const Status& s);

  ProgressDeps d_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  std::atomic<bool> asleep_{false};

  std::mutex cmd_mu_;
  std::vector<std::function<void()>> cmds_;
  std::vector<std::function<void()>> running_cmds_;

  std::unordered_map<ConnId, std::unique_ptr<Connection>> conns_;
  std::unordered_map<uint64_t, std::unique_ptr<Op>> ops_;
  uint64_t next_op_id_ = 1;
  std::vector<void*> done_;  // reused buffer of finished chunk owners
  std::vector<pollfd> pfds_;
  std::vector<Connection*> pconns_;
  int idle_passes_ = 0;
  Clock::time_point next_liveness_{};  // when check_liveness() has work
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_PROGRESS_H_
