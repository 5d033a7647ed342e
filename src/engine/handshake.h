// Handshake: turns a fresh TCP control connection into a connection with
// plugin comms up in both directions.
//
//   connector                                  acceptor
//   HELLO(version, me, expect-you, C, my C listen handles, auth?, nonce)  ->
//     with an auth key (engine/auth.h):
//                  <-  AUTH_CHALLENGE(nonce) | REJECT
//     AUTH_PROOF   ->
//                  <-  AUTH_PROOF | REJECT
//                  <-  HELLO_REPLY(version, me, expect-you, C, handles) | REJECT
//   both: plugin connect to the peer's handles + accept on our own listen
//         comms, non-blocking, driven until all C are up or the deadline
//   both: READY ->  <- READY
//
// Any mismatch (protocol version, GPU id, channel count, auth key) is
// answered with a REJECT frame carrying the reason before the connection is
// closed, so both sides report the same cause. The acceptor creates no plugin
// comm before the HELLO is valid and, with a key, the peer's proof checks.
//
// The connector runs on the caller's thread and blocks up to its deadline;
// the acceptor is a non-blocking state machine (engine/accept_handshake.h)
// that the listener's one thread drives.
#ifndef TCPX_ENGINE_HANDSHAKE_H_
#define TCPX_ENGINE_HANDSHAKE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "engine/control_channel.h"
#include "net/transport.h"
#include "tcpx/endpoint.h"

namespace tcpx::engine {

// The protocol version this build speaks. TCPX_TEST_PROTOCOL_VERSION (tests
// only) overrides what an endpoint announces, to exercise the mismatch path.
// 2: PING/PONG heartbeat frames (a version-1 peer would reject them).
// 3: HELLO carries the auth offer and nonce; AUTH_CHALLENGE/AUTH_PROOF.
// 4: CANCEL frames; REJECTED, CLOSED and CANCELLED codes in REJECT/WRITE_ACK.
inline constexpr uint32_t kProtocolVersion = 4;
uint32_t announced_protocol_version();

struct HandshakeParams {
  net::Transport* transport = nullptr;
  int net_dev = 0;
  PeerInfo self;
  uint32_t protocol_version = kProtocolVersion;
  int channels = 1;  // connector's proposal; the acceptor adopts it
  // Sockets in each comm this side connects, where the plugin takes a count
  // (the built-in one); other plugins read their own configuration.
  int sockets_per_channel = 1;
  int peer_timeout_ms = 5000;
  size_t max_control_backlog = 64u << 20;  // Config::max_control_backlog_bytes
  // Shared secret (Config::auth_key); empty = no authentication. Both sides
  // must agree: a key on one side only is refused.
  std::string auth_key;
  const std::atomic<bool>* cancel = nullptr;
};

// Plugin comms of one channel (one direction each).
struct ChannelComms {
  net::SendComm send;
  net::RecvComm recv;
  ncclNetDeviceHandle_v7_t recv_dev{};  // filled by accept (UNPACK type on TCPX)
};

struct HandshakeResult {
  std::unique_ptr<ControlChannel> control;
  PeerInfo peer;
  std::vector<ChannelComms> channels;
};

Status handshake_connect(const HandshakeParams& p, const std::string& ip, uint16_t port,
                         int expected_peer_gpu, Clock::time_point deadline, HandshakeResult* out);

// ---- Pieces both sides use -------------------------------------------------

// Creates n plugin listen comms and fills the handles to send.
Status listen_all(const HandshakeParams& p, int n, std::vector<net::ListenComm>* lc,
                  std::vector<net::NetHandle>* handles);

// Brings up every channel's send comm (connect to the peer's handles) and
// recv comm (accept on our listen comms). Both are non-blocking plugin steps
// that need the peer doing the same at the same time.
class ChannelBringUp {
 public:
  ChannelBringUp(const HandshakeParams& p, std::vector<net::ListenComm> listen,
                 std::vector<net::NetHandle> peer_handles);
  // One round of steps over every comm not yet up: OK when all are,
  // IN_PROGRESS while some are not (*stepped: one came up this round), or
  // the plugin's error.
  Status step(bool* stepped);
  // "3/4 comms", for timeout messages.
  std::string count() const;
  std::vector<ChannelComms> take() { return std::move(comms_); }

 private:
  net::Transport* transport_;
  int net_dev_;
  int sockets_per_channel_;
  std::vector<net::ListenComm> listen_;
  std::vector<net::NetHandle> peer_handles_;
  std::vector<ChannelComms> comms_;
  size_t up_ = 0;
};

// The error for a REJECT frame received at `stage` ("" or e.g. "while
// bringing up channels"), with the peer's reason.
Status peer_rejected(const Frame& f, const char* stage);
Status version_mismatch(uint32_t peer, uint32_t ours);

// Why an authentication failed; the same words on both sides (the connector
// sees them inside "peer rejected the handshake: ...").
inline constexpr char kAuthNoKeyAtConnector[] =
    "authentication failed: the accepting endpoint requires an auth key (TCPX_AUTH_KEY) and the connecting "
    "endpoint has none";
inline constexpr char kAuthNoKeyAtAcceptor[] =
    "authentication failed: the connecting endpoint has an auth key (TCPX_AUTH_KEY) and the accepting endpoint "
    "has none";
inline constexpr char kAuthKeysDiffer[] = "authentication failed: the endpoints' auth keys (TCPX_AUTH_KEY) differ";
inline constexpr char kAuthAcceptorUnproven[] =
    "authentication failed: the accepting endpoint could not prove it knows the auth key (TCPX_AUTH_KEY)";

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_HANDSHAKE_H_
