// Control-channel frames. Every frame is a fixed 20-byte header
//   u32 magic | u16 wire version | u8 type | u8 flags | u32 length | u64 request id
// (big-endian) followed by exactly `length` payload bytes. Payloads are
// encoded field by field (byte_io.h), never as raw structs.
//
// Request ids: a frame that starts a request (SEND_ANNOUNCE, WRITE_REQ,
// READ_REQ) carries the id its sender allocated; every reply (CTS, DATA,
// REJECT, WRITE_ACK) carries an id its *recipient* allocated, so a recipient
// always looks replies up in its own table (and checks the connection).
#ifndef TCPX_ENGINE_WIRE_H_
#define TCPX_ENGINE_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/auth.h"
#include "engine/byte_io.h"
#include "net/transport.h"
#include "tcpx/endpoint.h"

namespace tcpx::engine {

inline constexpr uint32_t kFrameMagic = 0x54435046;  // "TCPF"
inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 20;
// Where the payload length lies in a frame header (after magic 4, version
// 2, type 1 and flags 1 bytes).
inline constexpr size_t kFrameLengthOffset = 8;
// Largest payload: an application message (1 MiB) plus slack for framing.
inline constexpr size_t kMaxMessageBytes = 1u << 20;
inline constexpr size_t kMaxPayloadBytes = kMaxMessageBytes + 4096;
// Largest inline transfer (SEND_EAGER, WRITE_INLINE, READ_INLINE data);
// Config::eager_bytes may not exceed it.
inline constexpr size_t kMaxInlineBytes = 512u << 10;
// Largest payload of every other frame type but MESSAGE (HELLO with 16
// channels' plugin handles is about 2 KiB, NOTIFY at most 8 KiB).
inline constexpr size_t kMaxControlPayloadBytes = 16u << 10;
// Largest payload before a handshake is complete: a HELLO with 16 channels
// is about 2.2 KiB, so a peer that has not finished its handshake can never
// make us buffer more than this (plus a header).
inline constexpr size_t kMaxHandshakePayloadBytes = 4096;
inline constexpr size_t kMaxReasonBytes = 1024;
inline constexpr size_t kMaxNotifyField = 4096;

enum class FrameType : uint8_t {
  kHello = 1,         // handshake: connector -> acceptor
  kHelloReply = 2,    // handshake: acceptor -> connector
  kReady = 3,         // handshake: my channels are up
  kReject = 4,        // request (or handshake) refused, with code + reason
  kSendAnnounce = 5,  // two-sided: I have `size` bytes for your next recv
  kCts = 6,           // clear to send; payload: the recipient-side token
  kData = 7,          // my isends for this transfer follow on the channels
  kWriteReq = 8,      // one-sided write into an advertised region
  kWriteAck = 9,      // completes an eager send, inline write or write: (code, reason), code OK = success
  kReadReq = 10,      // one-sided read of an advertised region
  kNotify = 11,       // notification (name, msg)
  kMessage = 12,      // opaque application message
  // Small transfers between host buffers, data inline (no plugin requests):
  kSendEager = 13,    // two-sided: the bytes themselves; answered by ACK or REJECT
  kWriteInline = 14,  // one-sided write: FifoItem + size + bytes; answered by ACK or REJECT
  kReadInline = 15,   // reply to READ_REQ: the bytes themselves
  // Heartbeat (engine/liveness.h), protocol version 2: PING asks the peer's
  // progress thread for a sign of life, PONG is it. Empty payloads.
  kPing = 16,
  kPong = 17,
  // Handshake authentication (engine/auth.h), protocol version 3.
  kAuthChallenge = 18,  // acceptor -> connector: the acceptor's nonce
  kAuthProof = 19,      // either way: an HMAC-SHA256 proof of the key
  // Protocol version 4: the sender of SEND_ANNOUNCE/SEND_EAGER withdraws it
  // (cancel or deadline); payload (code, reason) like REJECT. The receiver
  // answers REJECT with that code if it still holds the send unmatched, and
  // ignores it otherwise (its CTS or ack is already on the way).
  kCancel = 20,
};
inline constexpr uint8_t kMaxFrameType = 20;
// Frame type numbers travel on the wire: append, never renumber.
static_assert(static_cast<uint8_t>(FrameType::kReject) == 4 && static_cast<uint8_t>(FrameType::kData) == 7 &&
                  static_cast<uint8_t>(FrameType::kWriteAck) == 9 && static_cast<uint8_t>(FrameType::kMessage) == 12 &&
                  static_cast<uint8_t>(FrameType::kPing) == 16 && static_cast<uint8_t>(FrameType::kAuthProof) == 19,
              "FrameType numbers travel on the wire");
static_assert(kMaxFrameType == static_cast<uint8_t>(FrameType::kCancel), "kMaxFrameType must name the last type");
const char* frame_type_name(FrameType t);
// The most a frame of type t may carry. decode_frame refuses a header that
// claims more, so only the types that are large by nature (MESSAGE and the
// inline transfers) can make a receiver buffer a large partial frame.
size_t max_payload(FrameType t);

struct Frame {
  FrameType type = FrameType::kMessage;
  uint8_t flags = 0;
  uint64_t id = 0;
  // The payload: owned in `payload`, except for the frames that carry
  // transfer data (WRITE_INLINE, READ_INLINE, SEND_EAGER) when decoded with
  // view_data (ControlChannel::read_frames): those leave `payload` empty and
  // `view` on the bytes where they were received, valid until the channel's
  // next read; a handler copies them to their destination from there, or
  // into `payload` to keep them. bytes() is either.
  std::vector<uint8_t> payload;
  std::span<const uint8_t> view;
  bool viewed = false;
  std::span<const uint8_t> bytes() const { return viewed ? view : std::span<const uint8_t>(payload); }
};

// Frame flags.
// READ_REQ: the initiator's destination is device memory; answer with DATA
// (the plugin path, which the GPU unpacker lands), never READ_INLINE.
inline constexpr uint8_t kFlagNoInline = 0x1;
static_assert(kFlagNoInline == 0x1, "frame flags travel on the wire");

// Appends one encoded frame to *out (a write buffer). INVALID_ARGUMENT if the
// payload exceeds max_payload(type).
Status append_frame(FrameType type, uint64_t id, const uint8_t* payload, size_t len,
                    std::vector<uint8_t>* out, uint8_t flags = 0);
inline Status append_frame(FrameType type, uint64_t id, std::span<const uint8_t> payload,
                           std::vector<uint8_t>* out, uint8_t flags = 0) {
  return append_frame(type, id, payload.data(), payload.size(), out, flags);
}

// Same with the payload in two parts (a header and raw data), so inline
// transfer data is copied once, straight into the write buffer.
Status append_frame2(FrameType type, uint64_t id, const uint8_t* a, size_t alen, const uint8_t* b, size_t blen,
                     std::vector<uint8_t>* out, uint8_t flags = 0);

// Decodes one frame from the start of [p, p+n). *consumed = 0 and OK when the
// bytes are a valid but incomplete prefix; PROTOCOL_ERROR on a bad magic,
// version, unknown type or a length over its type's limit (max_payload(t))
// or over max_payload_bytes (the stream cannot be trusted). view_data: an
// inline data frame's payload is left in place (Frame::view into [p, p+n)),
// not copied.
Status decode_frame(const uint8_t* p, size_t n, Frame* out, size_t* consumed,
                    size_t max_payload_bytes = kMaxPayloadBytes, bool view_data = false);

// ---- Payloads ----------------------------------------------------------------
struct HelloPayload {
  uint32_t protocol_version = 0;
  PeerInfo self;
  int32_t expected_peer_gpu = -1;  // the GPU index the sender expects of the recipient
  uint32_t channels = 0;
  std::vector<net::NetHandle> handles;  // one listen handle per channel
  // Protocol version 3. HELLO: the connector has an auth key and this nonce
  // goes into the proofs; HELLO_REPLY: unused (false, zeros).
  bool auth = false;
  auth::Nonce nonce{};
};
std::vector<uint8_t> encode_hello(const HelloPayload& h);
Status decode_hello(const std::vector<uint8_t>& b, HelloPayload* out);

// AUTH_CHALLENGE (a nonce) and AUTH_PROOF (an HMAC): exactly 32 raw bytes.
std::vector<uint8_t> encode_auth_bytes(const std::array<uint8_t, 32>& b);
Status decode_auth_bytes(const std::vector<uint8_t>& b, const char* what, std::array<uint8_t, 32>* out);

struct RejectPayload {
  StatusCode code = StatusCode::kInvalidArgument;
  std::string reason;
};
std::vector<uint8_t> encode_reject(const RejectPayload& r);
Status decode_reject(const std::vector<uint8_t>& b, RejectPayload* out);
// WRITE_ACK: the same (code, reason) layout, where code OK (0) is the one
// and only success; any other code is a failure, with its reason (or
// "no reason given"). *verdict gets the outcome; the return is the decode.
std::vector<uint8_t> encode_ack(const Status& verdict);
Status decode_ack(const std::vector<uint8_t>& b, Status* verdict);
// encode_ack(Status::Ok()), encoded once: a success's ack costs no allocation.
std::span<const uint8_t> ok_ack_payload();

FixedBytes<8> encode_u64(uint64_t v);
Status decode_u64(const std::vector<uint8_t>& b, uint64_t* v);

struct DataPayload {
  uint64_t size = 0;
  uint64_t chunk_bytes = 0;
  uint32_t channels = 0;
  uint32_t first_channel = 0;
};
FixedBytes<24> encode_data(const DataPayload& d);
Status decode_data(const std::vector<uint8_t>& b, DataPayload* out);

struct OneSidedPayload {
  FifoItem item{};
  uint64_t size = 0;
};
FixedBytes<sizeof(FifoItem::bytes) + 8> encode_one_sided(const OneSidedPayload& p);
Status decode_one_sided(std::span<const uint8_t> b, OneSidedPayload* out);

struct NotifyPayload {
  std::string name, msg;
};
std::vector<uint8_t> encode_notify(const NotifyPayload& n);
Status decode_notify(const std::vector<uint8_t>& b, NotifyPayload* out);

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_WIRE_H_
