#include "engine/handshake.h"

#include <cstdlib>
#include <string>

#include "common/log.h"

namespace tcpx::engine {
namespace {

// Sends a REJECT with the reason (best effort, short deadline) and returns
// `s` so callers can `return reject(...)`.
Status reject(ControlChannel* c, const Status& s, const std::atomic<bool>* cancel) {
  RejectPayload rj{s.code(), s.message()};
  if (c->queue(FrameType::kReject, 0, encode_reject(rj)).ok())
    (void)c->flush_until(Clock::now() + std::chrono::milliseconds(500), cancel);
  return s;
}

Status peer_rejected(const Frame& f, const char* stage) {
  RejectPayload rj;
  if (!decode_reject(f.payload, &rj).ok()) return ProtocolError(std::string("peer sent a malformed REJECT ") + stage);
  return Status(rj.code == StatusCode::kTimedOut ? StatusCode::kTimedOut : StatusCode::kProtocolError,
                std::string("peer rejected the handshake ") + stage + ": " + rj.reason);
}

// Creates C listen comms and fills the handles to send.
Status listen_all(const HandshakeParams& p, int n, std::vector<net::ListenComm>* lc,
                  std::vector<net::NetHandle>* handles) {
  lc->resize(n);
  handles->resize(n);
  for (int i = 0; i < n; ++i)
    TCPX_RETURN_IF_ERROR(p.transport->listen(p.net_dev, &(*handles)[i], &(*lc)[i]));
  return Status::Ok();
}

// Drives every plugin connect and accept to completion (both are
// non-blocking and need the peer doing the same at the same time).
Status bring_up(const HandshakeParams& p, std::vector<net::ListenComm>& lc,
                std::vector<net::NetHandle>& peer_handles, Clock::time_point deadline,
                std::vector<ChannelComms>* out) {
  size_t n = lc.size();
  out->resize(n);
  size_t up = 0;
  int idle = 0;
  while (up < 2 * n) {
    up = 0;
    bool stepped = false;
    for (size_t i = 0; i < n; ++i) {
      ChannelComms& c = (*out)[i];
      if (!c.send) {
        Status s = p.transport->connect_step(p.net_dev, &peer_handles[i], p.sockets_per_channel, &c.send);
        if (!s.ok() && !s.in_progress()) return Status(s.code(), "channel " + std::to_string(i) + ": " + s.message());
        stepped |= s.ok();
      }
      if (!c.recv) {
        Status s = p.transport->accept_step(lc[i], &c.recv, &c.recv_dev);
        if (!s.ok() && !s.in_progress()) return Status(s.code(), "channel " + std::to_string(i) + ": " + s.message());
        stepped |= s.ok();
      }
      up += (c.send ? 1 : 0) + (c.recv ? 1 : 0);
    }
    if (up == 2 * n) break;
    if (p.cancel != nullptr && p.cancel->load()) return PeerClosed("endpoint closing");
    if (Clock::now() >= deadline)
      return TimedOut("plugin channels not up before the deadline (" + std::to_string(up) + "/" +
                      std::to_string(2 * n) + " comms)");
    // Connects are non-blocking steps; back off gently instead of spinning.
    idle = stepped ? 0 : std::min(idle + 1, 10);
    if (idle > 0) usleep(static_cast<useconds_t>(100 * idle));
  }
  return Status::Ok();
}

Status exchange_ready(ControlChannel* c, const HandshakeParams& p, Clock::time_point deadline) {
  TCPX_RETURN_IF_ERROR(c->queue(FrameType::kReady, 0, {}));
  TCPX_RETURN_IF_ERROR(c->flush_until(deadline, p.cancel));
  Frame f;
  TCPX_RETURN_IF_ERROR(c->read_frame_until(&f, deadline, p.cancel));
  if (f.type == FrameType::kReject) return peer_rejected(f, "while bringing up channels");
  if (f.type != FrameType::kReady)
    return ProtocolError(std::string("handshake: expected READY, got ") + frame_type_name(f.type));
  return Status::Ok();
}

}  // namespace

uint32_t announced_protocol_version() {
  const char* v = std::getenv("TCPX_TEST_PROTOCOL_VERSION");
  if (v == nullptr || *v == '\0') return kProtocolVersion;
  return static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
}

Status handshake_connect(const HandshakeParams& p, const std::string& ip, uint16_t port,
                         int expected_peer_gpu, Clock::time_point deadline, HandshakeResult* out) {
  int fd = -1;
  TCPX_RETURN_IF_ERROR(tcp_connect(ip, port, deadline, p.cancel, &fd));
  configure_socket(fd, p.peer_timeout_ms);
  auto control = std::make_unique<ControlChannel>(fd, p.max_control_backlog);
  ControlChannel* c = control.get();

  std::vector<net::ListenComm> lc;
  HelloPayload hello;
  Status s = listen_all(p, p.channels, &lc, &hello.handles);
  if (!s.ok()) return reject(c, s, p.cancel);
  hello.protocol_version = p.protocol_version;
  hello.self = p.self;
  hello.expected_peer_gpu = expected_peer_gpu;
  hello.channels = static_cast<uint32_t>(p.channels);
  TCPX_RETURN_IF_ERROR(c->queue(FrameType::kHello, 0, encode_hello(hello)));
  TCPX_RETURN_IF_ERROR(c->flush_until(deadline, p.cancel));

  Frame f;
  s = c->read_frame_until(&f, deadline, p.cancel);
  if (s.code() == StatusCode::kTimedOut) return reject(c, TimedOut("handshake with " + ip + ":" + std::to_string(port) + " timed out waiting for the reply"), p.cancel);
  TCPX_RETURN_IF_ERROR(s);
  if (f.type == FrameType::kReject) return peer_rejected(f, "");
  if (f.type != FrameType::kHelloReply)
    return reject(c, ProtocolError(std::string("handshake: expected HELLO_REPLY, got ") + frame_type_name(f.type)), p.cancel);
  HelloPayload reply;
  s = decode_hello(f.payload, &reply);
  if (reply.protocol_version != p.protocol_version)
    return reject(c, ProtocolError("protocol version mismatch: peer speaks " + std::to_string(reply.protocol_version) +
                                   ", this endpoint " + std::to_string(p.protocol_version)), p.cancel);
  if (!s.ok()) return reject(c, s, p.cancel);
  if (reply.self.gpu_idx != expected_peer_gpu)
    return reject(c, ProtocolError("GPU id mismatch: expected the peer to be GPU " + std::to_string(expected_peer_gpu) +
                                   ", it is GPU " + std::to_string(reply.self.gpu_idx)), p.cancel);
  if (reply.expected_peer_gpu != p.self.gpu_idx || reply.channels != static_cast<uint32_t>(p.channels))
    return reject(c, ProtocolError("handshake reply does not match the hello (gpu or channel count)"), p.cancel);

  std::vector<ChannelComms> comms;
  s = bring_up(p, lc, reply.handles, deadline, &comms);
  if (!s.ok()) return reject(c, s, p.cancel);
  TCPX_RETURN_IF_ERROR(exchange_ready(c, p, deadline));
  out->control = std::move(control);
  out->peer = reply.self;
  out->peer.ip = ip;  // the address we reached, not what the peer believes it is
  out->channels = std::move(comms);
  return Status::Ok();
}

Status handshake_accept(const HandshakeParams& p, int fd, Clock::time_point deadline,
                        HandshakeResult* out) {
  configure_socket(fd, p.peer_timeout_ms);
  auto control = std::make_unique<ControlChannel>(fd, p.max_control_backlog);
  ControlChannel* c = control.get();
  Frame f;
  TCPX_RETURN_IF_ERROR(c->read_frame_until(&f, deadline, p.cancel));
  if (f.type != FrameType::kHello)
    return reject(c, ProtocolError(std::string("handshake: expected HELLO, got ") + frame_type_name(f.type)), p.cancel);
  HelloPayload hello;
  Status s = decode_hello(f.payload, &hello);
  if (hello.protocol_version != p.protocol_version)
    return reject(c, ProtocolError("protocol version mismatch: peer speaks " + std::to_string(hello.protocol_version) +
                                   ", this endpoint " + std::to_string(p.protocol_version)), p.cancel);
  if (!s.ok()) return reject(c, s, p.cancel);
  if (hello.expected_peer_gpu != p.self.gpu_idx)
    return reject(c, ProtocolError("GPU id mismatch: the peer expected GPU " + std::to_string(hello.expected_peer_gpu) +
                                   ", this endpoint is GPU " + std::to_string(p.self.gpu_idx)), p.cancel);
  if (hello.channels < 1 || hello.channels > 16)
    return reject(c, ProtocolError("bad channel count " + std::to_string(hello.channels)), p.cancel);

  std::vector<net::ListenComm> lc;
  HelloPayload reply;
  s = listen_all(p, static_cast<int>(hello.channels), &lc, &reply.handles);
  if (!s.ok()) return reject(c, s, p.cancel);
  reply.protocol_version = p.protocol_version;
  reply.self = p.self;
  reply.expected_peer_gpu = hello.self.gpu_idx;
  reply.channels = hello.channels;
  TCPX_RETURN_IF_ERROR(c->queue(FrameType::kHelloReply, 0, encode_hello(reply)));
  TCPX_RETURN_IF_ERROR(c->flush_until(deadline, p.cancel));

  std::vector<ChannelComms> comms;
  s = bring_up(p, lc, hello.handles, deadline, &comms);
  if (!s.ok()) return reject(c, s, p.cancel);
  TCPX_RETURN_IF_ERROR(exchange_ready(c, p, deadline));
  out->control = std::move(control);
  out->peer = hello.self;
  out->channels = std::move(comms);
  return Status::Ok();
}

}  // namespace tcpx::engine
