// Control-channel byte streams: decode_frame() run over a whole stream, and
// ControlChannel::read_frames() fed the same bytes in pieces through a local
// socketpair, the way a peer's bytes arrive.
//
// Input: u16 piece size (1..4096 bytes per write, at least 1/64 of the
// stream), then the stream.
// Invariants: both readers yield the same frames and the same verdict (a
// malformed stream is PROTOCOL_ERROR, else the closed socket is PEER_CLOSED);
// the channel's error is sticky; every accepted frame re-encodes to exactly
// the bytes it was decoded from.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "engine/control_channel.h"
#include "engine/wire.h"
#include "fuzz_check.h"

using namespace tcpx;
using namespace tcpx::engine;
using tcpx::fuzz::Bytes;

namespace {

bool same_frame(const Frame& a, const Frame& b) {
  return a.type == b.type && a.flags == b.flags && a.id == b.id &&
         std::equal(a.bytes().begin(), a.bytes().end(), b.bytes().begin(), b.bytes().end());
}

// A frame that owns its payload: read_frames() may hand out a view of its
// read buffer (inline data), valid only until its next call.
Frame owned(const Frame& f) {
  Frame c;
  c.type = f.type;
  c.flags = f.flags;
  c.id = f.id;
  c.payload.assign(f.bytes().begin(), f.bytes().end());
  return c;
}

// decode_frame over the whole stream, frame after frame.
Status decode_whole(const Bytes& stream, std::vector<Frame>* frames) {
  size_t off = 0;
  for (;;) {
    Frame f;
    size_t used = 0;
    Status s = decode_frame(stream.data() + off, stream.size() - off, &f, &used);
    if (!s.ok()) return s;
    if (used == 0) return Status::Ok();
    FUZZ_CHECK(used <= stream.size() - off);
    FUZZ_CHECK(used == kFrameHeaderBytes + f.payload.size());
    FUZZ_CHECK(f.payload.size() <= kMaxPayloadBytes);
    FUZZ_CHECK(static_cast<uint8_t>(f.type) >= 1 && static_cast<uint8_t>(f.type) <= kMaxFrameType);
    // Re-encoding gives back the very bytes (append_frame writes flags 0).
    Bytes again;
    FUZZ_CHECK(append_frame(f.type, f.id, f.payload, &again).ok());
    again[7] = f.flags;
    FUZZ_CHECK(std::equal(again.begin(), again.end(), stream.begin() + static_cast<long>(off)));
    off += used;
    frames->push_back(std::move(f));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tcpx::fuzz::InputCursor in(data, size);
  const size_t asked = 1 + in.u16() % 4096;
  const Bytes stream = in.rest();
  // At most 64 writes per input: syscalls, not decoding, bound this target's
  // speed, and 64 cuts still split headers at every offset over the run.
  const size_t piece = std::max(asked, stream.size() / 64 + 1);

  std::vector<Frame> want;
  Status want_status = decode_whole(stream, &want);
  FUZZ_EXPECT_CODE(want_status, StatusCode::kProtocolError);

  int sv[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  ControlChannel channel(sv[0]);  // owns sv[0]
  std::vector<Frame> got;
  // The channel reuses its frames and read buffer: keep copies of each call's.
  auto read_more = [&] {
    std::span<Frame> frames;
    Status r = channel.read_frames(&frames);
    for (const Frame& f : frames) got.push_back(owned(f));
    return r;
  };
  Status s;
  for (size_t off = 0; off < stream.size() && s.ok(); off += piece) {
    size_t n = std::min(piece, stream.size() - off);
    // Pieces stay far below the socket buffer and are drained at once.
    FUZZ_CHECK(write(sv[1], stream.data() + off, n) == static_cast<ssize_t>(n));
    s = read_more();
  }
  close(sv[1]);
  if (s.ok()) s = read_more();

  FUZZ_CHECK(!s.ok());
  FUZZ_CHECK(s.code() == (want_status.ok() ? StatusCode::kPeerClosed : StatusCode::kProtocolError));
  FUZZ_CHECK(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) FUZZ_CHECK(same_frame(got[i], want[i]));
  if (want_status.ok()) FUZZ_CHECK(channel.bytes_read() == stream.size());

  std::span<Frame> after;
  Status again = channel.read_frames(&after);
  FUZZ_CHECK(after.empty() && again.code() == s.code() && again.message() == s.message());
  return 0;
}
