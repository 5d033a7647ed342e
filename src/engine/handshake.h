// Handshake: turns a fresh TCP control connection into a connection with
// plugin comms up in both directions.
//
//   connector                                  acceptor
//   HELLO(version, me, expect-you, C, my C listen handles)  ->
//                  <-  HELLO_REPLY(version, me, expect-you, C, handles) | REJECT
//   both: plugin connect to the peer's handles + accept on our own listen
//         comms, non-blocking, driven until all C are up or the deadline
//   both: READY ->  <- READY
//
// Any mismatch (protocol version, GPU id, channel count) is answered with a
// REJECT frame carrying the reason before the connection is closed, so both
// sides report the same cause.
#ifndef TCPX_ENGINE_HANDSHAKE_H_
#define TCPX_ENGINE_HANDSHAKE_H_

#include <atomic>
#include <memory>
#include <vector>

#include "engine/control_channel.h"
#include "net/transport.h"
#include "tcpx/endpoint.h"

namespace tcpx::engine {

// The protocol version this build speaks. TCPX_TEST_PROTOCOL_VERSION (tests
// only) overrides what an endpoint announces, to exercise the mismatch path.
// 2: PING/PONG heartbeat frames (a version-1 peer would reject them).
inline constexpr uint32_t kProtocolVersion = 2;
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
// Takes ownership of fd (an accepted TCP connection).
Status handshake_accept(const HandshakeParams& p, int fd, Clock::time_point deadline,
                        HandshakeResult* out);

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_HANDSHAKE_H_
