// libuccl_p2p's GRANT_REQUEST / GRANT_REPLY messages (uccl_p2p/messages.h),
// which arrive as application messages from the peer.
//
// Input: the message.
// Invariants: errors are PROTOCOL_ERROR; peek_type agrees with the decoder
// that accepts the message; accepted messages respect the batch and reason
// limits and re-encode to exactly the same bytes.
#include "fuzz_check.h"
#include "uccl_p2p/messages.h"

using namespace tcpx;
using namespace tcpx::uccl_p2p;
using tcpx::fuzz::Bytes;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes b(data, data + size);
  MessageType type{};
  Status peeked = peek_type(b, &type);
  FUZZ_EXPECT_CODE(peeked, StatusCode::kProtocolError);

  GrantRequest req;
  Status s = decode(b, &req);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (s.ok()) {
    FUZZ_CHECK(peeked.ok() && type == MessageType::kGrantRequest);
    FUZZ_CHECK(!req.refs.empty() && req.refs.size() <= kMaxBatch);
    FUZZ_CHECK(encode(req) == b);
  }

  GrantReply reply;
  s = decode(b, &reply);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (s.ok()) {
    FUZZ_CHECK(peeked.ok() && type == MessageType::kGrantReply);
    FUZZ_CHECK(reply.items.size() <= kMaxBatch && reply.reason.size() <= 512);
    FUZZ_CHECK(is_status_code(static_cast<uint32_t>(reply.code)));
    FUZZ_CHECK(encode(reply) == b);
  }
  return 0;
}
