// tcpx::Endpoint: one per GPU. Moves bytes between registered regions of two
// processes over any ncclNet v7 plugin (Google's TCPX plugin or the built-in
// TCP one). Parity target: UCCL's RDMA Endpoint as used by uccl_engine.
//
// Threading: every method is thread-safe. *_async calls start or enqueue
// their work and return at once; poll_async never blocks; wait() blocks up to
// a deadline. The thread that waits drives progress itself for up to
// Config::spin_us (busy-polling), then sleeps; one background thread per
// endpoint drives when nobody waits, so a peer's read/write requests are
// served without the target application calling anything. Threads: the
// caller's, one background progress thread, one control-listener thread.
#ifndef TCPX_ENDPOINT_H_
#define TCPX_ENDPOINT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tcpx/config.h"
#include "tcpx/status.h"

namespace tcpx {

using ConnId = uint64_t;
using MrId = uint64_t;
using XferId = uint64_t;

// Who a metadata blob or a handshake says the peer is.
struct PeerInfo {
  std::string ip;     // textual IPv4 or IPv6 address (no brackets)
  uint16_t port = 0;  // host byte order here; network order on the wire
  int gpu_idx = -1;
};

// A region the target advertised for one read or write. 64 bytes exactly
// (NIXL hard-codes that size). Carries the target's MR id token, an offset
// inside that region, a size and a tag, serialised in network byte order; never
// a raw address. Treat it as opaque bytes.
struct FifoItem {
  uint8_t bytes[64];
};
static_assert(sizeof(FifoItem) == 64, "FifoItem is 64 bytes on every side");

// One piece of a vector read/write: local memory plus the remote region.
struct IoPiece {
  MrId mr = 0;             // local registration covering [data, data+size)
  void* data = nullptr;    // local source (write) or destination (read)
  size_t size = 0;
  FifoItem remote{};       // what the target advertised
};

struct Notification {
  ConnId conn = 0;
  std::string name;
  std::string msg;
};

enum class MemoryKind { kHost, kCuda };

class Endpoint {
 public:
  // Creates the endpoint, loads the plugin and starts the control listener.
  // local_gpu_idx may name no real GPU on a host-only machine (host memory
  // only); it is validated against the real device when CUDA is present.
  static Status create(int local_gpu_idx, const Config& config,
                       std::unique_ptr<Endpoint>* out);
  // Fails every outstanding transfer with CLOSED ("endpoint destroyed"),
  // closes all connections and joins the engine threads. Never blocks on a
  // dead peer.
  ~Endpoint();

  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // ---- Out-of-band metadata -------------------------------------------------
  // Versioned binary blob: magic, version, address family, address, port (in
  // network byte order), GPU index.
  std::vector<uint8_t> get_metadata() const;
  static Status parse_metadata(const std::vector<uint8_t>& blob, PeerInfo* out);
  const PeerInfo& local_info() const;
  // "ip:port?gpu" (IPv6 as "[addr]:port?gpu"): the C API's metadata string.
  std::string metadata_string() const;
  static Status parse_metadata_string(const std::string& s, PeerInfo* out);

  // ---- Connections ------------------------------------------------------------
  // Synchronous; fails with TIMED_OUT after config.connect_timeout_ms,
  // TRANSPORT_ERROR if the peer is unreachable, PROTOCOL_ERROR on version or
  // GPU-id mismatch (which the peer reports too).
  Status connect(const std::string& ip, int remote_gpu_idx, uint16_t port,
                 ConnId* out);
  Status connect(const PeerInfo& peer, ConnId* out);
  // Waits for the next incoming connection (handshake done, channels up).
  // timeout_ms < 0 waits without a deadline; otherwise TIMED_OUT when it
  // passes. A failed handshake is reported to that peer and accept goes on
  // waiting for the next one. Destroying the endpoint while another thread is
  // inside accept() is the caller's bug (the C API parks such callers).
  Status accept(ConnId* out, PeerInfo* peer, int timeout_ms = -1);
  // Closes one connection: its outstanding transfers fail with CLOSED, the
  // peer sees PEER_CLOSED. Returns promptly even when the peer is gone. Frees
  // all the connection's state (a failed connection keeps its error and
  // undelivered messages until closed). Ids are never reused: afterwards
  // every call on the id returns CLOSED, and closing it again is OK.
  Status close_connection(ConnId conn);

  // ---- Memory registration ------------------------------------------------
  // Bookkeeping only: plugin regMr happens lazily per (comm, MR) and is
  // cached. Host or CUDA memory is detected (CUDA must be 4096-byte aligned).
  // CUDA memory must hold its data when a transfer reading it is posted, and
  // must not be touched by the application until a transfer writing it
  // completes: the engine's copies run on its own non-blocking stream and
  // TCPX's DMA on none, so neither waits for the application's streams
  // (synchronize the producing stream, or its event, before posting).
  Status reg(const void* data, size_t size, MrId* out);
  // Releases every plugin handle of the region. Refused with kBusy while a
  // transfer still uses it (after driving progress for up to 5 ms, so a
  // request whose bytes already left does not count).
  Status dereg(MrId mr);
  // The same, but while transfers still use the region, waits up to wait_ms
  // for the last of them to end (woken by its end, no polling); BUSY after.
  Status dereg(MrId mr, int wait_ms);
  // The registration that contains [data, data+size), for callers that only
  // have addresses (the C API). NOT_FOUND if none does.
  Status find_mr(const void* data, size_t size, MrId* out) const;

  // ---- Two-sided --------------------------------------------------------------
  // Sends and receives match in posting order per connection. A receive whose
  // capacity is smaller than the matching send fails both with
  // INVALID_ARGUMENT; nothing is written past capacity.
  Status send_async(ConnId conn, MrId mr, const void* data, size_t size,
                    XferId* out);
  Status recv_async(ConnId conn, MrId mr, void* data, size_t capacity,
                    XferId* out);
  Status send(ConnId conn, MrId mr, const void* data, size_t size);
  Status recv(ConnId conn, MrId mr, void* data, size_t capacity,
              size_t* received = nullptr);

  // ---- One-sided ----------------------------------------------------------------
  // Describes [addr, addr+len) of a local registration for one peer read or
  // write over connection conn only (the item carries conn as its tag; the
  // same item used over another connection is refused with
  // INVALID_ARGUMENT). INVALID_ARGUMENT if the range is not inside mr.
  Status advertise(ConnId conn, MrId mr, const void* addr, size_t len,
                   FifoItem* out);
  // Reads the advertised remote region into dst (size must equal the
  // advertised size or be smaller). The target validates the request and
  // pushes the data; an invalid request fails the transfer with a status.
  Status read_async(ConnId conn, MrId mr, void* dst, size_t size,
                    const FifoItem& remote, XferId* out);
  // Writes src into the advertised remote region; done when the target
  // acknowledged that the data is in place.
  Status write_async(ConnId conn, MrId mr, const void* src, size_t size,
                     const FifoItem& remote, XferId* out);
  // Vector variants: one transfer id for all pieces. The transfer fails if any
  // piece fails; piece_status() tells which.
  Status readv_async(ConnId conn, const std::vector<IoPiece>& pieces,
                     XferId* out);
  Status writev_async(ConnId conn, const std::vector<IoPiece>& pieces,
                      XferId* out);
  Status read(ConnId conn, MrId mr, void* dst, size_t size,
              const FifoItem& remote);
  Status write(ConnId conn, MrId mr, const void* src, size_t size,
               const FifoItem& remote);

  // ---- Completion ------------------------------------------------------------
  // Never blocks. IN_PROGRESS while running; OK once the data is in place;
  // otherwise the transfer's error. A final answer retires the id: a later
  // poll of it is NOT_FOUND.
  // bytes (optional) is set with the final answer, and only then: the bytes
  // the transfer moved. For a receive that is the size of the send it
  // matched (at most its capacity), for a send, read or write its size, for
  // a vector the sum over its pieces; a failed transfer counts only the
  // pieces that succeeded (0 for a one-piece transfer).
  Status poll_async(XferId xfer, uint64_t* bytes = nullptr);
  // Blocks until the transfer is final or timeout_ms passes (IN_PROGRESS,
  // the transfer stays live; TIMED_OUT is a final status, from the
  // transfer's own deadline). timeout_ms < 0 waits without a deadline (a
  // dead peer still ends it with an error). Retires the id, and sets bytes,
  // like poll_async.
  Status wait(XferId xfer, int timeout_ms = -1, uint64_t* bytes = nullptr);
  // Runs one progress pass on the calling thread unless another thread is
  // driving (then returns at once). For callers that poll in their own loop;
  // wait() and the blocking calls drive by themselves. *moved: whether the
  // pass did anything.
  Status progress(bool* moved = nullptr);
  // Runs progress passes on the calling thread, as a waiting thread does,
  // until ready() returns true or Config::spin_us has passed; returns
  // ready()'s last answer. For callers that wait for something the engine
  // delivers through a message service rather than a transfer (the C API's
  // FIFO answers): an answer due within microseconds is read here, instead of
  // after the caller's next sleep. ready() runs without the engine's locks;
  // it must not call back into the endpoint. With spin_us 0 it runs one pass
  // (as progress() does); from a message service, none.
  bool drive_until(const std::function<bool()>& ready);
  // Per-piece result of a vector transfer: while it runs, and after
  // poll_async/wait returned its final status for as long as it is among the
  // 1024 most recent vector transfers so retired (65536 pieces in all);
  // NOT_FOUND after that.
  Status piece_status(XferId xfer, size_t piece, Status* out) const;

  // ---- Cancel and deadlines -------------------------------------------------
  // Cancels a running transfer. It ends CANCELLED if it still waits for the
  // peer's application: a receive no send has matched yet (at once), or a
  // send the peer has not matched with a receive (the peer forgets it; if it
  // matched it meanwhile, its receive fails CANCELLED too). A write is
  // withdrawn the same way if the target has not yet said where the data
  // goes. Anything else ends as it would have: a transfer whose data is
  // moving (a posted plugin request cannot be withdrawn, and every chunk the
  // peer expects must flow for the connection's channels to stay in step),
  // a read (the target answers at once), a receive already matched. Each of
  // those is bounded by the peer's progress, and by TCPX_PEER_TIMEOUT_MS when
  // the peer is gone. The buffer is the caller's again once the transfer's
  // final status is reported, never before. OK: the cancel was taken (the
  // final status tells what happened); NOT_FOUND: the transfer is not running.
  Status cancel(XferId xfer);
  // Gives a running transfer a deadline timeout_ms from now, replacing
  // Config::transfer_timeout_ms: at the deadline it is cancelled as by
  // cancel(), with TIMED_OUT instead of CANCELLED.
  Status set_timeout(XferId xfer, int timeout_ms);

  // ---- Notifications -----------------------------------------------------------
  // Delivered to the peer after the data of every transfer on this connection
  // that completed before this call is visible there.
  Status send_notification(ConnId conn, const std::string& name,
                           const std::string& msg);
  // Drains this endpoint's queue: exactly one entry per send_notification.
  std::vector<Notification> get_notifications();

  // ---- Application messages -------------------------------------------------
  // Opaque byte messages (at most 1 MiB each) carried in order on the
  // connection's control channel, for layers built on the endpoint such as the
  // C API's md_t / FIFO traffic. Ordered with the notifications and transfer
  // frames sent on the same connection.
  Status send_message(ConnId conn, const void* data, size_t size);
  // Next message from that connection. timeout_ms 0 polls; TIMED_OUT when
  // none arrived in time; PEER_CLOSED once the connection is gone and its
  // queue is drained.
  Status recv_message(ConnId conn, std::vector<uint8_t>* out, int timeout_ms);

  // A service that answers a connection's messages where they are read, on
  // the progress path, instead of queueing them for recv_message(): a
  // request and its reply then cost no thread hand-off (the C API serves its
  // md/FIFO traffic this way). Both callbacks run on whichever thread drives
  // progress at the time, one at a time, and must not block: no wait(), no
  // blocking transfer, no close_connection()/dereg() (refused there). They
  // may call send_message() and send_notification() (the frame leaves in the
  // same pass), advertise(), find_mr(), the *_async calls and poll_async().
  struct MessageService {
    // Each message, in arrival order. An error fails the connection with it
    // (the peer sees PEER_CLOSED).
    std::function<Status(std::vector<uint8_t>&& msg)> on_message;
    // Once, when the connection fails or is closed (endpoint destruction
    // included); may be empty.
    std::function<void(const Status& why)> on_closed;
  };
  // Installs the service. Messages that arrived before are handed to it
  // first, in order; a connection that already failed gets on_closed at
  // once. BUSY if the connection has a service already.
  Status serve_messages(ConnId conn, MessageService service);

  // ---- Introspection -------------------------------------------------------
  // Plugin name, channels, direct or bounce path, as the README run prints.
  std::string describe_path() const;
  int local_gpu_idx() const;
  // Connections this endpoint holds state for: open ones, and failed ones not
  // yet passed to close_connection.
  size_t connection_count() const;
  // The most recent failure of an incoming handshake (version or GPU-id
  // mismatch, timeout...), OK if none: accept() keeps waiting after such a
  // failure, so this is how the accepting side observes it.
  Status last_handshake_error() const;

  class Impl;

 private:
  explicit Endpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tcpx

#endif  // TCPX_ENDPOINT_H_
