// Control-frame payload decoders (engine/wire.h): HELLO / HELLO_REPLY,
// REJECT, WRITE_ACK, the u64 payloads (SEND_ANNOUNCE size, CTS token), DATA
// schedules, READ_REQ / WRITE_REQ (and WRITE_INLINE's head), NOTIFY.
//
// Input: u8 selector, then the payload.
// Invariants: errors are PROTOCOL_ERROR; what decodes respects the limits
// the engine relies on, and re-encodes to the same bytes (or, where the
// decoder deliberately normalises a field, decodes again to the same value).
#include "engine/wire.h"
#include "fuzz_check.h"

using namespace tcpx;
using namespace tcpx::engine;
using tcpx::fuzz::Bytes;

namespace {

enum Payload : uint8_t { kHello, kReject, kAck, kU64, kData, kOneSided, kNotify, kCount };

void hello(const Bytes& b) {
  HelloPayload h;
  Status s = decode_hello(b, &h);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (!s.ok()) return;
  FUZZ_CHECK(h.handles.size() == h.channels && h.channels <= 16);
  FUZZ_CHECK(h.self.ip.size() <= 64);
  FUZZ_CHECK(encode_hello(h) == b);
}

void reject(const Bytes& b) {
  RejectPayload r;
  Status s = decode_reject(b, &r);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (!s.ok()) return;
  // A peer cannot make a refusal look like success or "still running".
  FUZZ_CHECK(r.code != StatusCode::kOk && r.code != StatusCode::kInProgress);
  FUZZ_CHECK(r.reason.size() <= kMaxReasonBytes);
  RejectPayload again;
  FUZZ_CHECK(decode_reject(encode_reject(r), &again).ok());
  FUZZ_CHECK(again.code == r.code && again.reason == r.reason);
}

void ack(const Bytes& b) {
  Status verdict;
  Status s = decode_ack(b, &verdict);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (!s.ok()) return;
  FUZZ_CHECK(!verdict.in_progress());
  // Code 0 is success whatever the reason says; every other code a failure.
  FUZZ_CHECK(verdict.ok() == (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0));
  FUZZ_CHECK(verdict.message().size() <= kMaxReasonBytes + 64);
  Status again;
  FUZZ_CHECK(decode_ack(encode_ack(verdict), &again).ok());
  FUZZ_CHECK(again.code() == verdict.code());
}

void u64(const Bytes& b) {
  uint64_t v = 0;
  Status s = decode_u64(b, &v);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (s.ok()) FUZZ_CHECK(Bytes(encode_u64(v)) == b);
}

void data(const Bytes& b) {
  DataPayload d;
  Status s = decode_data(b, &d);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (s.ok()) FUZZ_CHECK(Bytes(encode_data(d)) == b);
}

void one_sided(const Bytes& b) {
  OneSidedPayload p;
  Status s = decode_one_sided(b, &p);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (s.ok()) FUZZ_CHECK(Bytes(encode_one_sided(p)) == b);
}

void notify(const Bytes& b) {
  NotifyPayload n;
  Status s = decode_notify(b, &n);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (!s.ok()) return;
  FUZZ_CHECK(n.name.size() <= kMaxNotifyField && n.msg.size() <= kMaxNotifyField);
  FUZZ_CHECK(encode_notify(n) == b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data_in, size_t size) {
  tcpx::fuzz::InputCursor in(data_in, size);
  const uint8_t which = in.u8() % kCount;
  const Bytes b = in.rest();
  switch (which) {
    case kHello: hello(b); break;
    case kReject: reject(b); break;
    case kAck: ack(b); break;
    case kU64: u64(b); break;
    case kData: data(b); break;
    case kOneSided: one_sided(b); break;
    case kNotify: notify(b); break;
  }
  return 0;
}
