#include "engine/wire.h"

#include <algorithm>

#include "engine/byte_io.h"

namespace tcpx::engine {
namespace {

Status bad(const char* what) { return ProtocolError(std::string("malformed ") + what + " payload"); }

}  // namespace

const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::kHello: return "HELLO";
    case FrameType::kHelloReply: return "HELLO_REPLY";
    case FrameType::kReady: return "READY";
    case FrameType::kReject: return "REJECT";
    case FrameType::kSendAnnounce: return "SEND_ANNOUNCE";
    case FrameType::kCts: return "CTS";
    case FrameType::kData: return "DATA";
    case FrameType::kWriteReq: return "WRITE_REQ";
    case FrameType::kWriteAck: return "WRITE_ACK";
    case FrameType::kReadReq: return "READ_REQ";
    case FrameType::kNotify: return "NOTIFY";
    case FrameType::kMessage: return "MESSAGE";
    case FrameType::kSendEager: return "SEND_EAGER";
    case FrameType::kWriteInline: return "WRITE_INLINE";
    case FrameType::kReadInline: return "READ_INLINE";
    case FrameType::kPing: return "PING";
    case FrameType::kPong: return "PONG";
    case FrameType::kAuthChallenge: return "AUTH_CHALLENGE";
    case FrameType::kAuthProof: return "AUTH_PROOF";
    case FrameType::kCancel: return "CANCEL";
  }
  return "UNKNOWN";
}

Status append_frame(FrameType type, uint64_t id, const uint8_t* payload, size_t len,
                    std::vector<uint8_t>* out, uint8_t flags) {
  return append_frame2(type, id, payload, len, nullptr, 0, out, flags);
}

Status append_frame2(FrameType type, uint64_t id, const uint8_t* payload, size_t alen, const uint8_t* b,
                     size_t blen, std::vector<uint8_t>* out, uint8_t flags) {
  size_t len = alen + blen;
  if (len > max_payload(type))
    return InvalidArgument(std::string(frame_type_name(type)) + " frame payload of " + std::to_string(len) +
                           " bytes exceeds " + std::to_string(max_payload(type)));
  // No exact reserve here: it would defeat the vector's geometric growth,
  // making every frame queued behind unsent ones copy the whole buffer
  // (quadratic; 1000 inline 64 KiB writes stalled the loop for seconds).
  // The header is built on the stack and appended at once: byte by byte it
  // was a capacity check per byte, on every frame of the latency path.
  FixedBytes<kFrameHeaderBytes> h;
  ByteWriter hw(&h);
  hw.u32(kFrameMagic);
  hw.u16(kWireVersion);
  hw.u8(static_cast<uint8_t>(type));
  hw.u8(flags);
  hw.u32(static_cast<uint32_t>(len));
  hw.u64(id);
  ByteWriter w(out);
  w.bytes(h.data(), h.size());
  if (alen > 0) w.bytes(payload, alen);
  if (blen > 0) w.bytes(b, blen);
  return Status::Ok();
}

size_t max_payload(FrameType t) {
  switch (t) {
    case FrameType::kMessage: return kMaxMessageBytes;
    case FrameType::kSendEager:
    case FrameType::kReadInline: return kMaxInlineBytes;
    case FrameType::kWriteInline: return kMaxInlineBytes + sizeof(FifoItem) + 8;
    default: return kMaxControlPayloadBytes;
  }
}

Status decode_frame(const uint8_t* p, size_t n, Frame* out, size_t* consumed, size_t max_payload_bytes,
                    bool view_data) {
  *consumed = 0;
  // Validate what we have of the header early, so garbage is rejected
  // without waiting for 20 bytes that may never come.
  ByteReader r(p, n);
  uint32_t magic = 0;
  if (!r.u32(&magic)) return Status::Ok();
  if (magic != kFrameMagic) return ProtocolError("bad frame magic");
  uint16_t version = 0;
  if (!r.u16(&version)) return Status::Ok();
  if (version != kWireVersion)
    return ProtocolError("unsupported wire version " + std::to_string(version));
  uint8_t type = 0, flags = 0;
  uint32_t len = 0;
  uint64_t id = 0;
  if (!r.u8(&type)) return Status::Ok();
  if (type == 0 || type > kMaxFrameType)
    return ProtocolError("unknown frame type " + std::to_string(type));
  if (!r.u8(&flags) || !r.u32(&len)) return Status::Ok();
  // The type's own limit, and the caller's (a handshake takes small frames only).
  const size_t limit = std::min(max_payload(static_cast<FrameType>(type)), max_payload_bytes);
  if (len > limit)
    return ProtocolError(std::string(frame_type_name(static_cast<FrameType>(type))) + " frame length " +
                         std::to_string(len) + " exceeds its limit of " + std::to_string(limit));
  if (!r.u64(&id) || r.remaining() < len) return Status::Ok();
  out->type = static_cast<FrameType>(type);
  out->flags = flags;
  out->id = id;
  out->viewed = view_data && (out->type == FrameType::kWriteInline || out->type == FrameType::kReadInline ||
                              out->type == FrameType::kSendEager);
  if (out->viewed) {
    out->payload.clear();
    out->view = {r.cursor(), len};
  } else {
    out->payload.assign(r.cursor(), r.cursor() + len);
    out->view = {};
  }
  *consumed = kFrameHeaderBytes + len;
  return Status::Ok();
}

std::vector<uint8_t> encode_hello(const HelloPayload& h) {
  std::vector<uint8_t> b;
  ByteWriter w(&b);
  w.u32(h.protocol_version);
  w.str(h.self.ip);
  w.u16(h.self.port);
  w.u32(static_cast<uint32_t>(h.self.gpu_idx));
  w.u32(static_cast<uint32_t>(h.expected_peer_gpu));
  w.u32(h.channels);
  w.u32(static_cast<uint32_t>(h.handles.size()));
  for (const auto& hd : h.handles) w.bytes(hd.data(), hd.size());
  w.u8(h.auth ? 1 : 0);
  w.bytes(h.nonce.data(), h.nonce.size());
  return b;
}

Status decode_hello(const std::vector<uint8_t>& b, HelloPayload* out) {
  ByteReader r(b.data(), b.size());
  uint32_t gpu = 0, expected = 0, nh = 0;
  if (!r.u32(&out->protocol_version)) return bad("HELLO");
  // The version is checked by the caller even when the rest does not parse
  // (a future version may change the layout), so report it separately.
  if (!r.str(&out->self.ip, 64) || !r.u16(&out->self.port) || !r.u32(&gpu) || !r.u32(&expected) ||
      !r.u32(&out->channels) || !r.u32(&nh) || nh > 16 || nh != out->channels)
    return bad("HELLO");
  out->self.gpu_idx = static_cast<int32_t>(gpu);
  out->expected_peer_gpu = static_cast<int32_t>(expected);
  out->handles.resize(nh);
  for (auto& hd : out->handles)
    if (!r.bytes(hd.data(), hd.size())) return bad("HELLO");
  uint8_t auth = 0;
  if (!r.u8(&auth) || auth > 1 || !r.bytes(out->nonce.data(), out->nonce.size())) return bad("HELLO");
  out->auth = auth == 1;
  if (r.remaining() != 0) return bad("HELLO");
  return Status::Ok();
}

std::vector<uint8_t> encode_auth_bytes(const std::array<uint8_t, 32>& b) { return {b.begin(), b.end()}; }

Status decode_auth_bytes(const std::vector<uint8_t>& b, const char* what, std::array<uint8_t, 32>* out) {
  if (b.size() != out->size()) return bad(what);
  std::copy(b.begin(), b.end(), out->begin());
  return Status::Ok();
}

std::vector<uint8_t> encode_reject(const RejectPayload& rj) {
  std::vector<uint8_t> b;
  ByteWriter w(&b);
  w.u32(static_cast<uint32_t>(rj.code));
  w.str(rj.reason.size() > kMaxReasonBytes ? rj.reason.substr(0, kMaxReasonBytes) : rj.reason);
  return b;
}

namespace {

// (u32 code, string reason): the layout REJECT and WRITE_ACK share.
bool read_verdict(const std::vector<uint8_t>& b, uint32_t* code, std::string* reason) {
  ByteReader r(b.data(), b.size());
  return r.u32(code) && r.str(reason, kMaxReasonBytes) && r.remaining() == 0;
}

// A peer's failure code, limited to codes that make sense as a remote
// verdict: anything else becomes PROTOCOL_ERROR, so a hostile peer cannot
// make us report OK or IN_PROGRESS for a failure.
StatusCode remote_failure(uint32_t code) {
  if (!is_status_code(code)) return StatusCode::kProtocolError;
  auto c = static_cast<StatusCode>(code);
  if (c == StatusCode::kOk || c == StatusCode::kInProgress) return StatusCode::kProtocolError;
  return c;
}

}  // namespace

Status decode_reject(const std::vector<uint8_t>& b, RejectPayload* out) {
  uint32_t code = 0;
  if (!read_verdict(b, &code, &out->reason)) return bad("REJECT");
  out->code = remote_failure(code);
  return Status::Ok();
}

std::vector<uint8_t> encode_ack(const Status& verdict) {
  return encode_reject({verdict.code(), verdict.ok() ? "" : verdict.message()});
}

std::span<const uint8_t> ok_ack_payload() {
  static const std::vector<uint8_t> ok = encode_ack(Status::Ok());
  return ok;
}

Status decode_ack(const std::vector<uint8_t>& b, Status* verdict) {
  uint32_t code = 0;
  std::string reason;
  if (!read_verdict(b, &code, &reason)) return bad("WRITE_ACK");
  if (code == static_cast<uint32_t>(StatusCode::kOk)) *verdict = Status::Ok();
  else *verdict = Status(remote_failure(code), "target: " + (reason.empty() ? "failed, no reason given" : reason));
  return Status::Ok();
}

FixedBytes<8> encode_u64(uint64_t v) {
  FixedBytes<8> b;
  ByteWriter(&b).u64(v);
  return b;
}

Status decode_u64(const std::vector<uint8_t>& b, uint64_t* v) {
  ByteReader r(b.data(), b.size());
  if (!r.u64(v) || r.remaining() != 0) return bad("u64");
  return Status::Ok();
}

FixedBytes<24> encode_data(const DataPayload& d) {
  FixedBytes<24> b;
  ByteWriter w(&b);
  w.u64(d.size);
  w.u64(d.chunk_bytes);
  w.u32(d.channels);
  w.u32(d.first_channel);
  return b;
}

Status decode_data(const std::vector<uint8_t>& b, DataPayload* out) {
  ByteReader r(b.data(), b.size());
  if (!r.u64(&out->size) || !r.u64(&out->chunk_bytes) || !r.u32(&out->channels) ||
      !r.u32(&out->first_channel) || r.remaining() != 0)
    return bad("DATA");
  return Status::Ok();
}

FixedBytes<sizeof(FifoItem::bytes) + 8> encode_one_sided(const OneSidedPayload& p) {
  FixedBytes<sizeof(FifoItem::bytes) + 8> b;
  ByteWriter w(&b);
  w.bytes(p.item.bytes, sizeof p.item.bytes);
  w.u64(p.size);
  return b;
}

Status decode_one_sided(std::span<const uint8_t> b, OneSidedPayload* out) {
  ByteReader r(b.data(), b.size());
  if (!r.bytes(out->item.bytes, sizeof out->item.bytes) || !r.u64(&out->size) || r.remaining() != 0)
    return bad("READ_REQ/WRITE_REQ");
  return Status::Ok();
}

std::vector<uint8_t> encode_notify(const NotifyPayload& n) {
  std::vector<uint8_t> b;
  ByteWriter w(&b);
  w.str(n.name);
  w.str(n.msg);
  return b;
}

Status decode_notify(const std::vector<uint8_t>& b, NotifyPayload* out) {
  ByteReader r(b.data(), b.size());
  if (!r.str(&out->name, kMaxNotifyField) || !r.str(&out->msg, kMaxNotifyField) || r.remaining() != 0)
    return bad("NOTIFY");
  return Status::Ok();
}

}  // namespace tcpx::engine
