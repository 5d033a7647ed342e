// The C API's md-vector / FIFO batches (capi/wire.h), which arrive as
// application messages from the peer.
//
// Input: the message.
// Invariants: errors are PROTOCOL_ERROR; an accepted batch holds 1..8192
// items of its own type only, reply indices run base, base+1, ...; and it
// re-encodes to exactly the same bytes.
#include "capi/wire.h"
#include "fuzz_check.h"

using namespace tcpx;
using namespace tcpx::capi;
using tcpx::fuzz::Bytes;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Bytes b(data, data + size);
  Batch batch;
  Status s = decode(b, &batch);
  FUZZ_EXPECT_CODE(s, StatusCode::kProtocolError);
  if (!s.ok()) return 0;
  if (batch.type == MsgType::kRequests) {
    FUZZ_CHECK(batch.replies.empty());
    FUZZ_CHECK(!batch.requests.empty() && batch.requests.size() <= kItemsPerBatch);
    FUZZ_CHECK(encode_requests(batch.seq, batch.base, batch.requests.data(), batch.requests.size()) == b);
  } else {
    FUZZ_CHECK(batch.type == MsgType::kReplies && batch.requests.empty());
    FUZZ_CHECK(!batch.replies.empty() && batch.replies.size() <= kItemsPerBatch);
    for (size_t i = 0; i < batch.replies.size(); ++i) FUZZ_CHECK(batch.replies[i].index == batch.base + i);
    FUZZ_CHECK(encode_replies(batch.seq, batch.base, batch.replies) == b);
  }
  return 0;
}
