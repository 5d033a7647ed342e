#include "engine/handshake.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "engine/auth.h"

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

// Every handshake frame is small; a peer claiming more is refused at the
// header, before we buffer it.
Status read_handshake_frame(ControlChannel* c, const HandshakeParams& p, Clock::time_point deadline, Frame* f) {
  return c->read_frame_until(f, deadline, p.cancel, kMaxHandshakePayloadBytes);
}

// Drives the bring-up until done or the deadline, backing off gently while
// nothing moves (connects are non-blocking steps with no fd to wait on).
Status bring_up_until(const HandshakeParams& p, ChannelBringUp* b, Clock::time_point deadline) {
  int idle = 0;
  for (;;) {
    bool stepped = false;
    Status s = b->step(&stepped);
    if (!s.in_progress()) return s;
    if (p.cancel != nullptr && p.cancel->load()) return Closed("endpoint closing");
    if (Clock::now() >= deadline)
      return TimedOut("plugin channels not up before the deadline (" + b->count() + ")");
    idle = stepped ? 0 : std::min(idle + 1, 10);
    if (idle > 0) usleep(static_cast<useconds_t>(100 * idle));
  }
}

Status exchange_ready(ControlChannel* c, const HandshakeParams& p, Clock::time_point deadline) {
  TCPX_RETURN_IF_ERROR(c->queue(FrameType::kReady, 0, {}));
  TCPX_RETURN_IF_ERROR(c->flush_until(deadline, p.cancel));
  Frame f;
  TCPX_RETURN_IF_ERROR(read_handshake_frame(c, p, deadline, &f));
  if (f.type == FrameType::kReject) return peer_rejected(f, "while bringing up channels");
  if (f.type != FrameType::kReady)
    return ProtocolError(std::string("handshake: expected READY, got ") + frame_type_name(f.type));
  return Status::Ok();
}

// The connector's half of the challenge-response (engine/auth.h): answers
// the acceptor's challenge and checks the acceptor's own proof.
Status authenticate(ControlChannel* c, const HandshakeParams& p, const std::vector<uint8_t>& hello_bytes,
                    const auth::Nonce& our_nonce, const Frame& challenge, Clock::time_point deadline) {
  if (p.auth_key.empty()) return reject(c, ProtocolError(kAuthNoKeyAtConnector), p.cancel);
  auth::Nonce their_nonce;
  Status s = decode_auth_bytes(challenge.payload, "AUTH_CHALLENGE", &their_nonce);
  if (!s.ok()) return reject(c, s, p.cancel);
  auth::Proof proof;
  TCPX_RETURN_IF_ERROR(auth::prove(p.auth_key, auth::Role::kConnector, their_nonce, our_nonce, hello_bytes, &proof));
  TCPX_RETURN_IF_ERROR(c->queue(FrameType::kAuthProof, 0, encode_auth_bytes(proof)));
  TCPX_RETURN_IF_ERROR(c->flush_until(deadline, p.cancel));
  Frame f;
  TCPX_RETURN_IF_ERROR(read_handshake_frame(c, p, deadline, &f));
  if (f.type == FrameType::kReject) return peer_rejected(f, "");
  if (f.type != FrameType::kAuthProof)
    return reject(c, ProtocolError(std::string("handshake: expected AUTH_PROOF, got ") + frame_type_name(f.type)),
                  p.cancel);
  auth::Proof theirs, expected;
  s = decode_auth_bytes(f.payload, "AUTH_PROOF", &theirs);
  if (!s.ok()) return reject(c, s, p.cancel);
  TCPX_RETURN_IF_ERROR(
      auth::prove(p.auth_key, auth::Role::kAcceptor, their_nonce, our_nonce, hello_bytes, &expected));
  if (!auth::same_proof(theirs, expected)) return reject(c, ProtocolError(kAuthAcceptorUnproven), p.cancel);
  return Status::Ok();
}

}  // namespace

Status peer_rejected(const Frame& f, const char* stage) {
  std::string where = *stage == '\0' ? "" : std::string(" ") + stage;
  RejectPayload rj;
  if (!decode_reject(f.payload, &rj).ok()) return ProtocolError("peer sent a malformed REJECT" + where);
  // TIMED_OUT and BUSY (too many handshakes in progress) are worth a retry;
  // everything else is a refusal.
  bool retry = rj.code == StatusCode::kTimedOut || rj.code == StatusCode::kBusy;
  return Status(retry ? rj.code : StatusCode::kProtocolError, "peer rejected the handshake" + where + ": " + rj.reason);
}

Status version_mismatch(uint32_t peer, uint32_t ours) {
  return ProtocolError("protocol version mismatch: peer speaks " + std::to_string(peer) + ", this endpoint " +
                       std::to_string(ours));
}

Status listen_all(const HandshakeParams& p, int n, std::vector<net::ListenComm>* lc,
                  std::vector<net::NetHandle>* handles) {
  lc->resize(n);
  handles->resize(n);
  for (int i = 0; i < n; ++i)
    TCPX_RETURN_IF_ERROR(p.transport->listen(p.net_dev, &(*handles)[i], &(*lc)[i]));
  return Status::Ok();
}

ChannelBringUp::ChannelBringUp(const HandshakeParams& p, std::vector<net::ListenComm> listen,
                               std::vector<net::NetHandle> peer_handles)
    : transport_(p.transport),
      net_dev_(p.net_dev),
      sockets_per_channel_(p.sockets_per_channel),
      listen_(std::move(listen)),
      peer_handles_(std::move(peer_handles)),
      comms_(listen_.size()) {}

Status ChannelBringUp::step(bool* stepped) {
  *stepped = false;
  size_t n = comms_.size();
  for (size_t i = 0; i < n && up_ < 2 * n; ++i) {
    ChannelComms& c = comms_[i];
    if (!c.send) {
      Status s = transport_->connect_step(net_dev_, &peer_handles_[i], sockets_per_channel_, &c.send);
      if (!s.ok() && !s.in_progress()) return Status(s.code(), "channel " + std::to_string(i) + ": " + s.message());
      if (s.ok()) { ++up_; *stepped = true; }
    }
    if (!c.recv) {
      Status s = transport_->accept_step(listen_[i], &c.recv, &c.recv_dev);
      if (!s.ok() && !s.in_progress()) return Status(s.code(), "channel " + std::to_string(i) + ": " + s.message());
      if (s.ok()) { ++up_; *stepped = true; }
    }
  }
  if (up_ < 2 * n) return Status(StatusCode::kInProgress, "channels coming up");
  listen_.clear();  // every accept is done: the listen comms have served
  return Status::Ok();
}

std::string ChannelBringUp::count() const {
  return std::to_string(up_) + "/" + std::to_string(2 * comms_.size()) + " comms";
}

uint32_t announced_protocol_version() {
  const char* v = std::getenv("TCPX_TEST_PROTOCOL_VERSION");
  if (v == nullptr || *v == '\0') return kProtocolVersion;
  return static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
}

Status handshake_connect(const HandshakeParams& p, const std::string& ip, uint16_t port,
                         int expected_peer_gpu, Clock::time_point deadline, HandshakeResult* out) {
  // Listen comms first, so the HELLO follows the TCP connect at once: the
  // acceptor gives a fresh connection only a few seconds to say HELLO.
  std::vector<net::ListenComm> lc;
  HelloPayload hello;
  TCPX_RETURN_IF_ERROR(listen_all(p, p.channels, &lc, &hello.handles));
  hello.protocol_version = p.protocol_version;
  hello.self = p.self;
  hello.expected_peer_gpu = expected_peer_gpu;
  hello.channels = static_cast<uint32_t>(p.channels);
  hello.auth = !p.auth_key.empty();
  if (hello.auth) TCPX_RETURN_IF_ERROR(auth::make_nonce(&hello.nonce));
  const std::vector<uint8_t> hello_bytes = encode_hello(hello);

  int fd = -1;
  TCPX_RETURN_IF_ERROR(tcp_connect(ip, port, deadline, p.cancel, &fd));
  configure_socket(fd, p.peer_timeout_ms);
  auto control = std::make_unique<ControlChannel>(fd, p.max_control_backlog);
  ControlChannel* c = control.get();
  TCPX_RETURN_IF_ERROR(c->queue(FrameType::kHello, 0, hello_bytes));
  TCPX_RETURN_IF_ERROR(c->flush_until(deadline, p.cancel));

  Frame f;
  Status s = read_handshake_frame(c, p, deadline, &f);
  if (s.code() == StatusCode::kTimedOut) return reject(c, TimedOut("handshake with " + ip + ":" + std::to_string(port) + " timed out waiting for the reply"), p.cancel);
  TCPX_RETURN_IF_ERROR(s);
  if (f.type == FrameType::kReject) return peer_rejected(f, "");
  if (f.type == FrameType::kAuthChallenge) {
    TCPX_RETURN_IF_ERROR(authenticate(c, p, hello_bytes, hello.nonce, f, deadline));
    TCPX_RETURN_IF_ERROR(read_handshake_frame(c, p, deadline, &f));
    if (f.type == FrameType::kReject) return peer_rejected(f, "");
  } else if (hello.auth && f.type == FrameType::kHelloReply) {
    // Mutual: an acceptor that skips the challenge has not proven the key.
    return reject(c, ProtocolError(kAuthAcceptorUnproven), p.cancel);
  }
  if (f.type != FrameType::kHelloReply)
    return reject(c, ProtocolError(std::string("handshake: expected HELLO_REPLY, got ") + frame_type_name(f.type)), p.cancel);
  HelloPayload reply;
  s = decode_hello(f.payload, &reply);
  if (reply.protocol_version != p.protocol_version)
    return reject(c, version_mismatch(reply.protocol_version, p.protocol_version), p.cancel);
  if (!s.ok()) return reject(c, s, p.cancel);
  if (reply.self.gpu_idx != expected_peer_gpu)
    return reject(c, ProtocolError("GPU id mismatch: expected the peer to be GPU " + std::to_string(expected_peer_gpu) +
                                   ", it is GPU " + std::to_string(reply.self.gpu_idx)), p.cancel);
  if (reply.expected_peer_gpu != p.self.gpu_idx || reply.channels != static_cast<uint32_t>(p.channels))
    return reject(c, ProtocolError("handshake reply does not match the hello (gpu or channel count)"), p.cancel);

  ChannelBringUp bring_up(p, std::move(lc), std::move(reply.handles));
  s = bring_up_until(p, &bring_up, deadline);
  if (!s.ok()) return reject(c, s, p.cancel);
  TCPX_RETURN_IF_ERROR(exchange_ready(c, p, deadline));
  out->control = std::move(control);
  out->peer = reply.self;
  out->peer.ip = ip;  // the address we reached, not what the peer believes it is
  out->channels = bring_up.take();
  return Status::Ok();
}

}  // namespace tcpx::engine
