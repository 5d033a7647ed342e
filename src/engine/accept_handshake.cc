#include "engine/accept_handshake.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

namespace tcpx::engine {
namespace {

std::string address_of_peer(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "an unknown peer";
  char text[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(a->sin_port));
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
  return "[" + std::string(text) + "]:" + std::to_string(ntohs(a->sin6_port));
}

Status in_progress() { return Status(StatusCode::kInProgress, "handshake under way"); }

}  // namespace

AcceptHandshake::AcceptHandshake(const HandshakeParams& p, int fd, int hello_timeout_ms, int timeout_ms)
    : p_(p), hello_timeout_ms_(std::min(hello_timeout_ms, timeout_ms)) {
  auto now = Clock::now();
  hello_deadline_ = now + std::chrono::milliseconds(hello_timeout_ms_);
  deadline_ = now + std::chrono::milliseconds(timeout_ms);
  configure_socket(fd, p.peer_timeout_ms);
  peer_address_ = address_of_peer(fd);
  control_ = std::make_unique<ControlChannel>(fd, p.max_control_backlog);
}

short AcceptHandshake::events() const {
  // Past the peer's READY the bytes belong to the connection, not to us.
  short e = peer_ready_ ? 0 : POLLIN;
  if (control_->wants_write()) e |= POLLOUT;
  return e;
}

Clock::time_point AcceptHandshake::deadline() const {
  return stage_ == Stage::kHello || stage_ == Stage::kProof ? hello_deadline_ : deadline_;
}

Status AcceptHandshake::step(bool* stepped) {
  *stepped = false;
  Status s = advance(stepped);
  if (s.in_progress() && Clock::now() >= deadline()) return timed_out();
  return s;
}

Status AcceptHandshake::advance(bool* stepped) {
  TCPX_RETURN_IF_ERROR(control_->flush());
  for (;;) {
    if (stage_ == Stage::kChannels) {
      bool came_up = false;
      Status s = bring_up_->step(&came_up);
      *stepped |= came_up;
      if (!s.ok() && !s.in_progress()) return reject(s);
      if (s.ok()) {
        TCPX_RETURN_IF_ERROR(control_->queue(FrameType::kReady, 0, {}));
        TCPX_RETURN_IF_ERROR(control_->flush());
        stage_ = Stage::kReady;
      }
    }
    if (stage_ == Stage::kReady && peer_ready_) {
      if (control_->wants_write()) return in_progress();  // our READY first
      stage_ = Stage::kDone;
      return Status::Ok();
    }
    if (peer_ready_) return in_progress();
    Frame f;
    bool got = false;
    Status s = control_->read_one_frame(&f, kMaxHandshakePayloadBytes, &got);
    if (!s.ok()) return s;
    if (!got) return in_progress();
    *stepped = true;
    TCPX_RETURN_IF_ERROR(on_frame(f));
  }
}

Status AcceptHandshake::on_frame(const Frame& f) {
  if (f.type == FrameType::kReject)
    return peer_rejected(f, stage_ == Stage::kChannels || stage_ == Stage::kReady ? "while bringing up channels" : "");
  switch (stage_) {
    case Stage::kHello: return on_hello(f);
    case Stage::kProof: return on_proof(f);
    case Stage::kChannels:
    case Stage::kReady:
      if (f.type != FrameType::kReady)
        return reject(ProtocolError(std::string("handshake: expected READY, got ") + frame_type_name(f.type)));
      peer_ready_ = true;
      return Status::Ok();
    case Stage::kDone: break;
  }
  return Internal("handshake: frame after the end");
}

Status AcceptHandshake::on_hello(const Frame& f) {
  if (f.type != FrameType::kHello)
    return reject(ProtocolError(std::string("handshake: expected HELLO, got ") + frame_type_name(f.type)));
  Status s = decode_hello(f.payload, &hello_);
  if (hello_.protocol_version != p_.protocol_version)
    return reject(version_mismatch(hello_.protocol_version, p_.protocol_version));
  if (!s.ok()) return reject(s);
  // Keys before anything else: an unauthenticated peer learns nothing more
  // about this endpoint than its protocol version.
  bool have_key = !p_.auth_key.empty();
  if (hello_.auth && !have_key) return reject(ProtocolError(kAuthNoKeyAtAcceptor));
  if (!hello_.auth && have_key) return reject(ProtocolError(kAuthNoKeyAtConnector));
  if (!have_key) return start_channels();
  hello_bytes_ = f.payload;
  s = auth::make_nonce(&nonce_);
  if (!s.ok()) return reject(s);
  TCPX_RETURN_IF_ERROR(control_->queue(FrameType::kAuthChallenge, 0, encode_auth_bytes(nonce_)));
  TCPX_RETURN_IF_ERROR(control_->flush());
  stage_ = Stage::kProof;
  return Status::Ok();
}

Status AcceptHandshake::on_proof(const Frame& f) {
  if (f.type != FrameType::kAuthProof)
    return reject(ProtocolError(std::string("handshake: expected AUTH_PROOF, got ") + frame_type_name(f.type)));
  auth::Proof theirs, expected, ours;
  Status s = decode_auth_bytes(f.payload, "AUTH_PROOF", &theirs);
  if (!s.ok()) return reject(s);
  s = auth::prove(p_.auth_key, auth::Role::kConnector, nonce_, hello_.nonce, hello_bytes_, &expected);
  if (!s.ok()) return reject(s);
  if (!auth::same_proof(theirs, expected)) return reject(ProtocolError(kAuthKeysDiffer));
  s = auth::prove(p_.auth_key, auth::Role::kAcceptor, nonce_, hello_.nonce, hello_bytes_, &ours);
  if (!s.ok()) return reject(s);
  TCPX_RETURN_IF_ERROR(control_->queue(FrameType::kAuthProof, 0, encode_auth_bytes(ours)));
  return start_channels();
}

Status AcceptHandshake::start_channels() {
  if (hello_.expected_peer_gpu != p_.self.gpu_idx)
    return reject(ProtocolError("GPU id mismatch: the peer expected GPU " + std::to_string(hello_.expected_peer_gpu) +
                                ", this endpoint is GPU " + std::to_string(p_.self.gpu_idx)));
  if (hello_.channels < 1 || hello_.channels > 16)
    return reject(ProtocolError("bad channel count " + std::to_string(hello_.channels)));
  std::vector<net::ListenComm> lc;
  HelloPayload reply;
  Status s = listen_all(p_, static_cast<int>(hello_.channels), &lc, &reply.handles);
  if (!s.ok()) return reject(s);
  reply.protocol_version = p_.protocol_version;
  reply.self = p_.self;
  reply.expected_peer_gpu = hello_.self.gpu_idx;
  reply.channels = hello_.channels;
  TCPX_RETURN_IF_ERROR(control_->queue(FrameType::kHelloReply, 0, encode_hello(reply)));
  TCPX_RETURN_IF_ERROR(control_->flush());
  bring_up_ = std::make_unique<ChannelBringUp>(p_, std::move(lc), std::move(hello_.handles));
  stage_ = Stage::kChannels;
  return Status::Ok();
}

Status AcceptHandshake::timed_out() {
  std::string hello_ms = std::to_string(hello_timeout_ms_) + " ms";
  switch (stage_) {
    case Stage::kHello: return reject(TimedOut("no HELLO within " + hello_ms + " of connecting (a silent or slow peer)"));
    case Stage::kProof: return reject(TimedOut("no AUTH_PROOF within " + hello_ms + " of connecting"));
    case Stage::kChannels:
      return reject(TimedOut("plugin channels not up before the deadline (" + bring_up_->count() + ")"));
    case Stage::kReady:
    case Stage::kDone: break;
  }
  return reject(TimedOut("no READY from the peer before the deadline"));
}

Status AcceptHandshake::reject(const Status& s) {
  RejectPayload rj{s.code(), s.message()};
  if (control_->queue(FrameType::kReject, 0, encode_reject(rj)).ok()) (void)control_->flush();
  return s;
}

HandshakeResult AcceptHandshake::take_result() {
  HandshakeResult r;
  r.control = std::move(control_);
  r.peer = hello_.self;
  r.channels = bring_up_->take();
  return r;
}

}  // namespace tcpx::engine
