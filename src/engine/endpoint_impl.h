// Endpoint::Impl: wires the pieces together. User threads touch only the
// thread-safe parts (MrTable, TransferTable, the maps under mu_) and hand all
// connection work to the Progress thread.
#ifndef TCPX_ENGINE_ENDPOINT_IMPL_H_
#define TCPX_ENGINE_ENDPOINT_IMPL_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>

#include "engine/listener.h"
#include "engine/mr_table.h"
#include "engine/progress.h"
#include "engine/spin_policy.h"
#include "engine/spin_probe.h"
#include "engine/sync_wait.h"
#include "engine/transfer_table.h"
#include "tcpx/endpoint.h"

namespace tcpx {

class Endpoint::Impl {
 public:
  ~Impl();
  Status init(int gpu, const Config& cfg);

  // Registers a handshaken connection with the progress thread; returns its id.
  ConnId adopt(engine::HandshakeResult&& hs);
  // The connection's shared state, or the reason it cannot be used.
  Status usable(ConnId conn) const;
  // Queues a control frame on conn: at once on the loop, else posted.
  void send_frame(ConnId conn, engine::FrameType type, std::vector<uint8_t> payload);
  // *out = conn's shared state. Ids are never reused, so an id below
  // next_conn without an entry was closed: PEER_CLOSED for it, NOT_FOUND for
  // an id this endpoint never handed out. Caller holds mu.
  Status find_locked(ConnId conn, std::shared_ptr<engine::ConnShared>* out) const;
  // A blocking call's one-piece transfer: it ends in `done`, on the
  // caller's stack, with no transfer entry (engine/sync_wait.h). A receive
  // whose message is here already ends within post() (received_now, from
  // Progress::receive_now) without an op at all.
  struct Blocking {
    engine::SyncWait done;
    std::optional<uint64_t> received_now;
  };
  // Acquires the regions, creates the transfer and posts its pieces; for a
  // blocking call (one piece), no transfer (*out is 0).
  Status post(engine::OpKind kind, ConnId conn, std::span<const IoPiece> pieces, XferId* out,
              Blocking* blocking = nullptr);
  // Posts a blocking call's piece and waits for its end. bytes: what a
  // receive got.
  Status run_blocking(engine::OpKind kind, ConnId conn, const IoPiece& piece, uint64_t* bytes);
  // Drives progress on the calling thread for up to cfg.spin_us, then
  // sleeps until the transfer is final or the deadline passes. bytes: what
  // a receive got.
  Status wait(XferId id, int timeout_ms, uint64_t* bytes);
  // wait()'s body, for a transfer in the table or a blocking call's
  // SyncWait (endpoint_transfers.cc).
  template <class Target>
  Status wait_for(Target& target, int timeout_ms, uint64_t* bytes);
  // The spinning part of a wait: runs progress passes on the calling thread,
  // as a guest, from start until ready() or end. guest_clock: the wait's
  // start, when the application's return after its last wait should count
  // (Progress::Guest). Returns whether ready() said so, and then when
  // (*ready_at, if given).
  using Clock = std::chrono::steady_clock;
  template <class Ready>
  bool drive_until(Clock::time_point start, Clock::time_point end, Clock::time_point guest_clock, Ready&& ready,
                   Clock::time_point* ready_at);
  engine::SpinPolicy spin;  // reset to cfg.spin_us in init()
  engine::SpinProbe spin_probe;  // windows where waits spin though spin chose to sleep

  Config cfg;
  int gpu = -1;
  PeerInfo local;
  std::shared_ptr<net::Transport> transport;
  int net_dev = 0;
  bool unpack_device = false;  // plugin delivers into bounce buffers (TCPX or bounce mode)
  engine::HandshakeParams hs_params;
  std::atomic<bool> closing{false};

  engine::MrTable mrs;
  engine::TransferTable xfers;
  engine::RecvPathStats recv_stats;
  std::unique_ptr<unpack::Unpacker> cpu_unpacker;
  std::unique_ptr<unpack::Unpacker> cuda_unpacker;
  std::unique_ptr<engine::Progress> progress;
  engine::ControlListener listener;

  mutable std::mutex mu;
  std::condition_variable accept_cv;
  // Open connections, and failed ones until close_connection (the sticky
  // error and undelivered messages stay readable until then).
  std::unordered_map<ConnId, std::shared_ptr<engine::ConnShared>> conns;
  std::deque<std::pair<ConnId, PeerInfo>> accepted;
  std::deque<Notification> notifications;
  // notification_cost() of those in notifications; written under mu.
  std::atomic<uint64_t> notification_bytes{0};
  ConnId next_conn = 1;
};

}  // namespace tcpx

#endif  // TCPX_ENGINE_ENDPOINT_IMPL_H_
