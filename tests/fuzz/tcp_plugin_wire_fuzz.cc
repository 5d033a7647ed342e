// The built-in TCP plugin's own wire (net/tcp/wire.h): the per-socket hello
// an accepting plugin reads from whoever connects, the message header that
// precedes every payload, and stripe(), which both ends use to cut a payload
// across a comm's sockets.
//
// Input: u8 selector, then a 16-byte hello (and u8 max_socks), a 16-byte
// message header, or (u64 size, u8 nsocks) for stripe.
// Invariants: an accepted hello has 1 <= nsocks <= max_socks and index <
// nsocks and re-encodes to the same bytes; an accepted header's size fits an
// int (the v7 API's size type) and re-encodes to the same bytes; the stripes
// of a payload are in order, contiguous, and cover it exactly.
#include <algorithm>
#include <cstring>

#include "fuzz_check.h"
#include "net/tcp/options.h"
#include "net/tcp/wire.h"

using namespace tcpx::tcp;
using tcpx::fuzz::Bytes;

namespace {

void hello(tcpx::fuzz::InputCursor& in) {
  const int max_socks = 1 + in.u8() % 16;
  uint8_t raw[kHelloBytes] = {};
  Bytes b = in.take(kHelloBytes);
  std::copy(b.begin(), b.end(), raw);
  Hello h;
  if (!decode_hello(raw, max_socks, &h)) return;
  FUZZ_CHECK(h.nsocks >= 1 && h.nsocks <= max_socks && h.index >= 0 && h.index < h.nsocks);
  uint8_t again[kHelloBytes];
  encode_hello(h, again);
  FUZZ_CHECK(std::memcmp(again, raw, kHelloBytes) == 0);
}

void msg_header(tcpx::fuzz::InputCursor& in) {
  uint8_t raw[kMsgHeaderBytes] = {};
  Bytes b = in.take(kMsgHeaderBytes);
  std::copy(b.begin(), b.end(), raw);
  uint64_t size = 0;
  if (!decode_msg_header(raw, &size)) return;
  FUZZ_CHECK(size <= static_cast<uint64_t>(INT_MAX));
  uint8_t again[kMsgHeaderBytes];
  encode_msg_header(size, again);
  FUZZ_CHECK(std::memcmp(again, raw, kMsgHeaderBytes) == 0);
}

void stripes(tcpx::fuzz::InputCursor& in) {
  // Sizes a header can announce (<= INT_MAX), over the socket counts a
  // hello can carry.
  const uint64_t size = in.u64() % (uint64_t{INT_MAX} + 1);
  const int nsocks = 1 + in.u8() % kMaxSocketsPerComm;
  uint64_t next = 0;
  for (int s = 0; s < nsocks; ++s) {
    Piece p = stripe(size, nsocks, s);
    FUZZ_CHECK(p.begin <= p.end && p.end <= size);
    FUZZ_CHECK(p.begin == next || p.size() == 0);
    if (p.size() > 0) next = p.end;
  }
  FUZZ_CHECK(next == size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tcpx::fuzz::InputCursor in(data, size);
  switch (in.u8() % 3) {
    case 0: hello(in); break;
    case 1: msg_header(in); break;
    case 2: stripes(in); break;
  }
  return 0;
}
