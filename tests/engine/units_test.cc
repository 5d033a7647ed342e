// Single-process unit tests of the engine's pure parts: metadata, frames,
// FifoItems, chunk schedules, config parsing, MR bookkeeping, the heartbeat
// schedule, and the control channel's read buffer over a socketpair.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/socket_error.h"
#include "engine/chunk_schedule.h"
#include "engine/control_channel.h"
#include "engine/core_contention.h"
#include "engine/fifo_item.h"
#include "engine/liveness.h"
#include "engine/metadata.h"
#include "engine/mr_table.h"
#include "engine/owed_replies.h"
#include "engine/spin_policy.h"
#include "engine/spin_probe.h"
#include "engine/transfer_table.h"
#include "engine/wire.h"
#include "tcpx/config.h"
#include "tcpx/endpoint.h"

using namespace tcpx;
using namespace tcpx::engine;

TEST(Metadata, Ipv4RoundTripKeepsPort28900) {
  PeerInfo in{"10.1.2.3", 28900, 3}, out;
  std::vector<uint8_t> blob;
  ASSERT_TRUE(encode_metadata(in, &blob).ok());
  // Port in network byte order at its fixed place: magic(4) ver(1) fam(1) addr(4).
  EXPECT_EQ(blob[10], 28900 >> 8);
  EXPECT_EQ(blob[11], 28900 & 0xff);
  ASSERT_TRUE(Endpoint::parse_metadata(blob, &out).ok());
  EXPECT_EQ(out.ip, "10.1.2.3");
  EXPECT_EQ(out.port, 28900);  // the reference bug read this back as 58480
  EXPECT_EQ(out.gpu_idx, 3);
}

TEST(Metadata, Ipv6RoundTrip) {
  PeerInfo in{"fe80::1:2", 65535, 7}, out;
  std::vector<uint8_t> blob;
  ASSERT_TRUE(encode_metadata(in, &blob).ok());
  ASSERT_TRUE(Endpoint::parse_metadata(blob, &out).ok());
  EXPECT_EQ(out.ip, "fe80::1:2");
  EXPECT_EQ(out.port, 65535);
  EXPECT_EQ(out.gpu_idx, 7);
}

TEST(Metadata, GarbageRejected) {
  PeerInfo in{"127.0.0.1", 1234, 0}, out;
  std::vector<uint8_t> good;
  ASSERT_TRUE(encode_metadata(in, &good).ok());
  auto bad = good;
  bad[0] ^= 1;  // magic
  EXPECT_EQ(Endpoint::parse_metadata(bad, &out).code(), StatusCode::kInvalidArgument);
  bad = good;
  bad[4] = 9;  // version
  EXPECT_EQ(Endpoint::parse_metadata(bad, &out).code(), StatusCode::kInvalidArgument);
  bad = good;
  bad[5] = 5;  // family
  EXPECT_EQ(Endpoint::parse_metadata(bad, &out).code(), StatusCode::kInvalidArgument);
  bad = good;
  bad.pop_back();  // truncated
  EXPECT_EQ(Endpoint::parse_metadata(bad, &out).code(), StatusCode::kInvalidArgument);
  bad = good;
  bad.push_back(0);  // trailing
  EXPECT_EQ(Endpoint::parse_metadata(bad, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Endpoint::parse_metadata({}, &out).code(), StatusCode::kInvalidArgument);
}

TEST(Metadata, StringForms) {
  PeerInfo p;
  EXPECT_EQ(format_metadata_string({"1.2.3.4", 28900, 1}), "1.2.3.4:28900?1");
  EXPECT_EQ(format_metadata_string({"::1", 80, 0}), "[::1]:80?0");
  ASSERT_TRUE(Endpoint::parse_metadata_string("1.2.3.4:28900?1", &p).ok());
  EXPECT_EQ(p.ip, "1.2.3.4");
  EXPECT_EQ(p.port, 28900);
  EXPECT_EQ(p.gpu_idx, 1);
  ASSERT_TRUE(Endpoint::parse_metadata_string("[fe80::2]:9?4", &p).ok());
  EXPECT_EQ(p.ip, "fe80::2");
  EXPECT_EQ(p.port, 9);
  EXPECT_EQ(p.gpu_idx, 4);
  for (const char* bad : {"", "1.2.3.4", "1.2.3.4:80", "1.2.3.4:x?0", "1.2.3.4:70000?0", "[::1:80?0",
                          "host:80?0", "1.2.3.4:80?", "1.2.3.4:80?1x"})
    EXPECT_EQ(Endpoint::parse_metadata_string(bad, &p).code(), StatusCode::kInvalidArgument) << bad;
}

TEST(Wire, FrameRoundTripAndPartialInput) {
  std::vector<uint8_t> buf;
  ASSERT_TRUE(append_frame(FrameType::kData, 0x0102030405060708ull, encode_data({5, 4096, 2, 1}), &buf).ok());
  ASSERT_TRUE(append_frame(FrameType::kMessage, 9, std::vector<uint8_t>{}, &buf).ok());
  // Every strict prefix of the first frame decodes as "incomplete", not error.
  size_t first_len = kFrameHeaderBytes + 24;
  for (size_t n = 0; n < first_len; ++n) {
    Frame f;
    size_t used = 99;
    ASSERT_TRUE(decode_frame(buf.data(), n, &f, &used).ok()) << n;
    EXPECT_EQ(used, 0u);
  }
  Frame f;
  size_t used = 0;
  ASSERT_TRUE(decode_frame(buf.data(), buf.size(), &f, &used).ok());
  EXPECT_EQ(used, first_len);
  EXPECT_EQ(f.type, FrameType::kData);
  EXPECT_EQ(f.id, 0x0102030405060708ull);
  DataPayload d;
  ASSERT_TRUE(decode_data(f.payload, &d).ok());
  EXPECT_EQ(d.size, 5u);
  EXPECT_EQ(d.chunk_bytes, 4096u);
  EXPECT_EQ(d.channels, 2u);
  EXPECT_EQ(d.first_channel, 1u);
  ASSERT_TRUE(decode_frame(buf.data() + used, buf.size() - used, &f, &used).ok());
  EXPECT_EQ(f.type, FrameType::kMessage);
  EXPECT_EQ(f.id, 9u);
}

TEST(Wire, GarbageOversizedAndUnknownTypesRejected) {
  std::vector<uint8_t> buf;
  ASSERT_TRUE(append_frame(FrameType::kCts, 1, encode_u64(7), &buf).ok());
  Frame f;
  size_t used = 0;
  auto bad = buf;
  bad[1] ^= 0xff;
  EXPECT_EQ(decode_frame(bad.data(), bad.size(), &f, &used).code(), StatusCode::kProtocolError);
  bad = buf;
  bad[5] = 2;  // wire version
  EXPECT_EQ(decode_frame(bad.data(), bad.size(), &f, &used).code(), StatusCode::kProtocolError);
  bad = buf;
  bad[6] = 200;  // type
  EXPECT_EQ(decode_frame(bad.data(), bad.size(), &f, &used).code(), StatusCode::kProtocolError);
  bad = buf;
  bad[8] = 0x7f;  // length ~2 GiB
  EXPECT_EQ(decode_frame(bad.data(), bad.size(), &f, &used).code(), StatusCode::kProtocolError);
  std::vector<uint8_t> huge(kMaxPayloadBytes + 1);
  std::vector<uint8_t> out;
  EXPECT_EQ(append_frame(FrameType::kMessage, 0, huge, &out).code(), StatusCode::kInvalidArgument);
  // Payload decoders: truncated and trailing bytes are errors.
  uint64_t v;
  EXPECT_FALSE(decode_u64({1, 2, 3}, &v).ok());
  EXPECT_FALSE(decode_u64(std::vector<uint8_t>(9), &v).ok());
  DataPayload d;
  EXPECT_FALSE(decode_data(std::vector<uint8_t>(23), &d).ok());
  NotifyPayload n;
  EXPECT_FALSE(decode_notify({0, 0, 0, 5, 'a'}, &n).ok());
  EXPECT_FALSE(decode_notify({0xff, 0xff, 0xff, 0xff}, &n).ok());
  RejectPayload rj;
  // A REJECT can never carry OK.
  ASSERT_TRUE(decode_reject(encode_reject({StatusCode::kOk, "x"}), &rj).ok());
  EXPECT_EQ(rj.code, StatusCode::kProtocolError);
  HelloPayload h;
  EXPECT_FALSE(decode_hello(std::vector<uint8_t>(8), &h).ok());
  // WRITE_ACK: OK is success; a failure stays a failure even without a
  // reason (it used to be "empty reason = success").
  Status verdict = Internal("unset");
  ASSERT_TRUE(decode_ack(encode_ack(Status::Ok()), &verdict).ok());
  EXPECT_TRUE(verdict.ok());
  ASSERT_TRUE(decode_ack(encode_reject({StatusCode::kNotFound, ""}), &verdict).ok());
  EXPECT_EQ(verdict.code(), StatusCode::kNotFound);
  ASSERT_TRUE(decode_ack(encode_ack(InvalidArgument("out of bounds")), &verdict).ok());
  EXPECT_EQ(verdict.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(verdict.message().find("out of bounds"), std::string::npos);
  ASSERT_TRUE(decode_ack(encode_reject({StatusCode::kInProgress, "x"}), &verdict).ok());
  EXPECT_EQ(verdict.code(), StatusCode::kProtocolError);
  EXPECT_FALSE(decode_ack({0, 0, 0}, &verdict).ok());
}

// A header claiming more than its type can carry is refused as soon as the
// header is in, so a peer cannot make us wait for (and buffer) a large frame
// of a small type.
TEST(Wire, LengthLimitedPerFrameType) {
  auto header = [](FrameType t, uint32_t len) {
    std::vector<uint8_t> b;
    EXPECT_TRUE(append_frame(t, 1, std::vector<uint8_t>{}, &b).ok());
    b[8] = static_cast<uint8_t>(len >> 24);
    b[9] = static_cast<uint8_t>(len >> 16);
    b[10] = static_cast<uint8_t>(len >> 8);
    b[11] = static_cast<uint8_t>(len);
    return b;
  };
  Frame f;
  size_t used = 0;
  for (FrameType t : {FrameType::kCts, FrameType::kPing, FrameType::kHello, FrameType::kNotify}) {
    auto h = header(t, kMaxControlPayloadBytes + 1);
    Status s = decode_frame(h.data(), h.size(), &f, &used);
    EXPECT_EQ(s.code(), StatusCode::kProtocolError) << frame_type_name(t);
    EXPECT_NE(s.message().find("exceeds its limit"), std::string::npos) << s.to_string();
    h = header(t, kMaxControlPayloadBytes);
    EXPECT_TRUE(decode_frame(h.data(), h.size(), &f, &used).ok()) << frame_type_name(t);
    EXPECT_EQ(used, 0u);  // incomplete, waiting
  }
  auto h = header(FrameType::kSendEager, kMaxInlineBytes + 1);
  EXPECT_EQ(decode_frame(h.data(), h.size(), &f, &used).code(), StatusCode::kProtocolError);
  h = header(FrameType::kMessage, kMaxMessageBytes);
  EXPECT_TRUE(decode_frame(h.data(), h.size(), &f, &used).ok());
  h = header(FrameType::kMessage, kMaxMessageBytes + 1);
  EXPECT_EQ(decode_frame(h.data(), h.size(), &f, &used).code(), StatusCode::kProtocolError);
  // And nothing is sent that the peer would refuse.
  std::vector<uint8_t> out;
  EXPECT_EQ(append_frame(FrameType::kNotify, 0, std::vector<uint8_t>(kMaxControlPayloadBytes + 1), &out).code(),
            StatusCode::kInvalidArgument);
}

// A frame that cannot be queued fails the channel for good, whatever the
// reason: the frames queued after it must never reach the peer (it would see
// a stream with a hole), and the engine fails the connection at the end of
// its pass from this error (Progress::fail_broken_channels).
TEST(ControlChannelTest, AFrameThatCannotBeQueuedFailsTheChannel) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  {
    ControlChannel oversize(sv[0]);
    Status s = oversize.queue(FrameType::kNotify, 1, std::vector<uint8_t>(kMaxControlPayloadBytes + 1));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(oversize.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(oversize.queue(FrameType::kPing, 2, {}).code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(oversize.wants_write());
    EXPECT_EQ(oversize.flush().code(), StatusCode::kInvalidArgument);
  }  // closes sv[0]
  close(sv[1]);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  // Past the backlog cap (the peer reads nothing): the channel fails, and a
  // frame that would have fitted on its own is refused after it.
  ControlChannel capped(sv[0], /*max_backlog=*/64u << 10);
  const std::vector<uint8_t> piece(4096, 0xab);
  Status s;
  for (int i = 0; i < 10000 && s.ok(); ++i) {
    s = capped.queue(FrameType::kMessage, static_cast<uint64_t>(i), piece);
    if (s.ok()) s = capped.flush();  // fills the socket first, then the backlog
  }
  EXPECT_EQ(s.code(), StatusCode::kTransportError) << s.to_string();
  EXPECT_EQ(capped.queue(FrameType::kPing, 0, {}).code(), StatusCode::kTransportError);
  EXPECT_EQ(capped.flush().code(), StatusCode::kTransportError);
  close(sv[1]);
}

// A peer sending large frames without pause: the read buffer stays within one
// maximal frame plus one read, every frame arrives intact, and the memory
// goes back once the stream stops.
TEST(ControlChannelTest, ReadBufferBoundedAndReleased) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ControlChannel reader(sv[0]);
  constexpr int kFrames = 24;
  std::thread writer([fd = sv[1]] {
    for (int i = 0; i < kFrames; ++i) {
      std::vector<uint8_t> buf;
      std::vector<uint8_t> payload(kMaxMessageBytes, static_cast<uint8_t>(i));
      (void)append_frame(FrameType::kMessage, static_cast<uint64_t>(i), payload, &buf);
      for (size_t off = 0; off < buf.size();) {
        ssize_t n = write(fd, buf.data() + off, buf.size() - off);
        if (n <= 0) return;
        off += static_cast<size_t>(n);
      }
    }
  });
  std::vector<Frame> got;
  auto read_more = [&] {
    std::span<Frame> frames;
    Status s = reader.read_frames(&frames);
    for (auto& f : frames) got.push_back(std::move(f));
    return s;
  };
  size_t most = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (got.size() < static_cast<size_t>(kFrames) && std::chrono::steady_clock::now() < deadline) {
    pollfd p{sv[0], POLLIN, 0};
    poll(&p, 1, 100);
    ASSERT_TRUE(read_more().ok());
    most = std::max(most, reader.read_buffer_bytes());
  }
  writer.join();
  ASSERT_EQ(got.size(), static_cast<size_t>(kFrames));
  for (int i = 0; i < kFrames; ++i) {
    EXPECT_EQ(got[i].id, static_cast<uint64_t>(i));
    ASSERT_EQ(got[i].payload.size(), kMaxMessageBytes);
    EXPECT_EQ(std::count(got[i].payload.begin(), got[i].payload.end(), static_cast<uint8_t>(i)),
              static_cast<long>(kMaxMessageBytes));
  }
  EXPECT_LE(most, kFrameHeaderBytes + kMaxPayloadBytes + (64u << 10));
  // The large buffer is kept while large frames keep coming, and released
  // once reads stopped needing it (a few hundred quiet reads).
  for (int i = 0; i < 1000 && reader.read_buffer_bytes() > (256u << 10); ++i)
    ASSERT_TRUE(read_more().ok());
  EXPECT_LE(reader.read_buffer_bytes(), 256u << 10);
  close(sv[1]);
}

// A stream of small frames is handed out in batches as it arrives, not once
// a maximal frame's worth (1 MiB) is buffered: a peer streaming one-sided
// answers would otherwise wait for us to read 250 of them before we handle
// the first. A large frame inside the stream still comes out whole.
TEST(ControlChannelTest, SmallFramesAreHandedOutInBatchesAndALargeOneWhole) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  // Room for far more than a batch in the socket (capped by net.core.wmem_max),
  // so that reading everything available would show in the bound below.
  int room = 4 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
  ControlChannel reader(sv[0]);
  constexpr int kFrames = 600;
  constexpr int kLarge = 300;  // this one is a maximal MESSAGE
  constexpr size_t kSmall = 4096;
  auto payload_of = [](int i) {
    return std::vector<uint8_t>(i == kLarge ? kMaxMessageBytes : kSmall, static_cast<uint8_t>(i * 7 + 1));
  };
  std::vector<uint8_t> stream;
  for (int i = 0; i < kFrames; ++i)
    ASSERT_TRUE(append_frame(FrameType::kMessage, static_cast<uint64_t>(i), payload_of(i), &stream).ok());
  std::thread writer([fd = sv[1], &stream] {
    for (size_t off = 0; off < stream.size();) {
      ssize_t n = send(fd, stream.data() + off, stream.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // the reader gave up and shut its end
      off += static_cast<size_t>(n);
    }
  });
  int next = 0;
  bool intact = true;
  size_t most_small_bytes = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (intact && next < kFrames && std::chrono::steady_clock::now() < deadline) {
    pollfd p{sv[0], POLLIN, 0};
    poll(&p, 1, 100);
    std::span<Frame> frames;
    Status s = reader.read_frames(&frames);
    EXPECT_TRUE(s.ok()) << s.to_string();
    size_t small_bytes = 0;
    for (const Frame& f : frames) {
      intact = s.ok() && f.id == static_cast<uint64_t>(next) && f.payload == payload_of(next);
      if (!intact) break;
      if (next != kLarge) small_bytes += kFrameHeaderBytes + f.payload.size();
      ++next;
    }
    most_small_bytes = std::max(most_small_bytes, small_bytes);
  }
  shutdown(sv[0], SHUT_RDWR);  // unblocks the writer if we stopped early
  writer.join();
  EXPECT_TRUE(intact) << "frame " << next << " out of order or corrupted";
  EXPECT_EQ(next, kFrames);
  // At most one batch (128 KiB) plus one read (64 KiB) of small frames per call.
  EXPECT_LE(most_small_bytes, (192u << 10) + kFrameHeaderBytes + kSmall);
  close(sv[1]);
}

// Inline transfer data (WRITE_INLINE, READ_INLINE, SEND_EAGER) is handed
// out as a view of the read buffer, copied once by its handler, not first
// into a payload of its own; every other frame owns its payload. The views of
// one call stay intact until the next, also when a frame straddles two reads.
TEST(ControlChannelTest, InlineDataIsViewedInPlaceUntilTheNextRead) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ControlChannel reader(sv[0]);
  const FrameType kinds[] = {FrameType::kWriteInline, FrameType::kMessage, FrameType::kReadInline,
                             FrameType::kSendEager};
  constexpr int kFrames = 300;
  auto payload_of = [](int i) {
    return std::vector<uint8_t>(static_cast<size_t>(100 + (i * 977) % 9000), static_cast<uint8_t>(i * 13 + 5));
  };
  std::vector<uint8_t> stream;
  for (int i = 0; i < kFrames; ++i)
    ASSERT_TRUE(append_frame(kinds[i % 4], static_cast<uint64_t>(i), payload_of(i), &stream).ok());
  int next = 0;
  size_t off = 0;
  while (next < kFrames) {
    // 3,001 bytes at a time: frames straddle reads at ever other offsets.
    if (off < stream.size()) {
      const size_t n = std::min<size_t>(3001, stream.size() - off);
      ASSERT_EQ(write(sv[1], stream.data() + off, n), static_cast<ssize_t>(n));
      off += n;
    }
    std::span<Frame> frames;
    ASSERT_TRUE(reader.read_frames(&frames).ok());
    // All of this call's frames are checked after it returned.
    for (const Frame& f : frames) {
      ASSERT_EQ(f.id, static_cast<uint64_t>(next));
      const bool inline_data = kinds[next % 4] != FrameType::kMessage;
      EXPECT_EQ(f.viewed, inline_data) << next;
      EXPECT_EQ(f.payload.empty(), inline_data) << next;
      const std::vector<uint8_t> want = payload_of(next);
      ASSERT_TRUE(std::equal(f.bytes().begin(), f.bytes().end(), want.begin(), want.end())) << "frame " << next;
      ++next;
    }
    ASSERT_TRUE(off < stream.size() || !frames.empty()) << "stalled at frame " << next;
  }
  close(sv[1]);
}

// Decoded frames and their payload buffers are reused between reads (no
// allocation per frame), but what they keep stays bounded whatever frames a
// peer sends: here batches that each end with a 16 KiB frame at a later
// position, which would leave such a buffer in every slot if each slot kept
// what it last held.
TEST(ControlChannelTest, FramesKeptForReuseStayBounded) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ControlChannel reader(sv[0]);
  size_t most = 0;
  for (int k = 0; k < 600; k += 7) {
    std::vector<uint8_t> buf;
    for (int i = 0; i < k; ++i)
      ASSERT_TRUE(append_frame(FrameType::kMessage, static_cast<uint64_t>(i), std::vector<uint8_t>(8, 1), &buf).ok());
    const std::vector<uint8_t> big(16u << 10, static_cast<uint8_t>(k));
    ASSERT_TRUE(append_frame(FrameType::kMessage, 7, big, &buf).ok());
    for (size_t off = 0; off < buf.size();) {
      ssize_t n = write(sv[1], buf.data() + off, buf.size() - off);
      ASSERT_GT(n, 0);
      off += static_cast<size_t>(n);
      // Read what arrived so far (the socket buffer is smaller than some
      // batches): every frame of the batch, the large one last and intact.
      while (true) {
        std::span<Frame> frames;
        ASSERT_TRUE(reader.read_frames(&frames).ok());
        for (const Frame& f : frames) {
          if (f.payload.size() == big.size()) {
            EXPECT_EQ(f.payload, big);
          } else {
            EXPECT_EQ(f.payload, std::vector<uint8_t>(8, 1));
          }
        }
        most = std::max(most, reader.kept_frame_bytes());
        if (frames.empty()) break;
      }
    }
  }
  EXPECT_LE(most, 1u << 20);
  close(sv[1]);
}

// Bursts of frames (a C API vector of 1,000 inline 4 KiB writes is 4 MiB):
// the write buffer grown for one is kept for the next, whose growth would
// otherwise fault in fresh pages again, and given back once they stopped.
TEST(ControlChannelTest, WriteBufferKeptAcrossBurstsAndGivenBackWhenTheyStop) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ControlChannel out(sv[0]);
  std::atomic<size_t> received{0};
  std::thread drain([fd = sv[1], &received] {
    std::vector<uint8_t> buf(1 << 16);
    for (ssize_t n; (n = recv(fd, buf.data(), buf.size(), 0)) > 0;) received += static_cast<size_t>(n);
  });
  const std::vector<uint8_t> payload(64 << 10, 0x5a);
  size_t sent = 0;
  auto burst = [&](int frames) {
    for (int i = 0; i < frames; ++i) ASSERT_TRUE(out.queue(FrameType::kMessage, 0, payload).ok());
    while (out.wants_write()) {
      pollfd p{sv[0], POLLOUT, 0};
      poll(&p, 1, 100);
      ASSERT_TRUE(out.flush().ok());
    }
    sent += static_cast<size_t>(frames) * (kFrameHeaderBytes + payload.size());
  };
  burst(96);  // 6 MiB
  const size_t grown = out.write_buffer_bytes();
  EXPECT_GT(grown, 4u << 20);
  burst(96);
  EXPECT_EQ(out.write_buffer_bytes(), grown) << "the second burst reuses the first one's buffer";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  burst(1);  // a heartbeat's worth, after a second without bursts
  EXPECT_LE(out.write_buffer_bytes(), 4u << 20);
  shutdown(sv[0], SHUT_WR);
  drain.join();
  EXPECT_EQ(received.load(), sent);
  close(sv[1]);
}

TEST(Wire, HelloRoundTrip) {
  HelloPayload h;
  h.protocol_version = 1;
  h.self = {"127.0.0.1", 4000, 2};
  h.expected_peer_gpu = 5;
  h.channels = 2;
  h.handles.resize(2);
  h.handles[1][127] = 0x42;
  HelloPayload o;
  ASSERT_TRUE(decode_hello(encode_hello(h), &o).ok());
  EXPECT_EQ(o.self.ip, "127.0.0.1");
  EXPECT_EQ(o.self.port, 4000);
  EXPECT_EQ(o.self.gpu_idx, 2);
  EXPECT_EQ(o.expected_peer_gpu, 5);
  ASSERT_EQ(o.handles.size(), 2u);
  EXPECT_EQ(o.handles[1][127], 0x42);
}

// A peer's failure codes: the new ones (protocol version 4) decode as
// themselves; OK, IN_PROGRESS and numbers past the last code are not a
// failure a peer may report.
TEST(Wire, RemoteFailureCodesAreCheckedAgainstTheVocabulary) {
  for (StatusCode c : {StatusCode::kRejected, StatusCode::kClosed, StatusCode::kCancelled, StatusCode::kTimedOut}) {
    RejectPayload out;
    ASSERT_TRUE(decode_reject(encode_reject({c, "why"}), &out).ok());
    EXPECT_EQ(out.code, c) << status_code_name(c);
  }
  for (uint32_t bad : {0u, 1u, static_cast<uint32_t>(kLastStatusCode) + 1, 0xffffffffu}) {
    std::vector<uint8_t> b = {static_cast<uint8_t>(bad >> 24), static_cast<uint8_t>(bad >> 16),
                              static_cast<uint8_t>(bad >> 8), static_cast<uint8_t>(bad), 0, 0, 0, 0};
    RejectPayload out;
    ASSERT_TRUE(decode_reject(b, &out).ok()) << bad;
    EXPECT_EQ(out.code, StatusCode::kProtocolError) << bad;
  }
  EXPECT_STREQ(status_code_name(StatusCode::kCancelled), "CANCELLED");
  EXPECT_STREQ(status_code_name(StatusCode::kRejected), "REJECTED");
  EXPECT_STREQ(status_code_name(StatusCode::kClosed), "CLOSED");
  EXPECT_STREQ(frame_type_name(FrameType::kCancel), "CANCEL");
}

TEST(SocketError, OneMappingForEverySocketPath) {
  Status s = socket_error("control connection failed", ECONNRESET, SocketStage::kConnected);
  EXPECT_EQ(s.code(), StatusCode::kPeerClosed) << s.to_string();
  EXPECT_NE(s.message().find("control connection failed: "), std::string::npos) << s.to_string();
  EXPECT_NE(s.message().find("(errno " + std::to_string(ECONNRESET) + ")"), std::string::npos) << s.to_string();
  for (int e : {EPIPE, ETIMEDOUT, ENOTCONN, EHOSTUNREACH})
    EXPECT_EQ(socket_error("x", e, SocketStage::kConnected).code(), StatusCode::kPeerClosed) << e;
  // Never connected: the peer did not go away, it was never reached.
  for (int e : {ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, EADDRINUSE})
    EXPECT_EQ(socket_error("connect to 10.0.0.1:1", e, SocketStage::kSetup).code(), StatusCode::kTransportError) << e;
  for (int e : {EBADF, EINVAL, ENOTSOCK, EFAULT})
    EXPECT_EQ(socket_error("x", e, SocketStage::kConnected).code(), StatusCode::kInternal) << e;
  EXPECT_EQ(socket_error("x", EMFILE, SocketStage::kSetup).code(), StatusCode::kTransportError);
}

TEST(FifoItemCodec, RoundTripAndRejects) {
  FifoFields f{11, 0xdeadbeefcafef00dull, 4096, 1 << 20, 77}, o;
  FifoItem item = encode_fifo_item(f);
  ASSERT_TRUE(decode_fifo_item(item, &o).ok());
  EXPECT_EQ(o.mr_id, 11u);
  EXPECT_EQ(o.mr_token, f.mr_token);
  EXPECT_EQ(o.offset, 4096u);
  EXPECT_EQ(o.size, 1u << 20);
  EXPECT_EQ(o.tag, 77u);
  EXPECT_EQ(item.bytes[8 + 7], 11);  // big-endian mr id
  FifoItem zero{};
  EXPECT_EQ(decode_fifo_item(zero, &o).code(), StatusCode::kInvalidArgument);
}

TEST(ChunkScheduleTest, CoversEveryByteRoundRobin) {
  ChunkSchedule s;
  ASSERT_TRUE(ChunkSchedule::make(10 * 4096 + 5, 4096, 3, 2, &s).ok());
  ASSERT_EQ(s.count(), 11u);
  uint64_t next = 0;
  for (uint64_t i = 0; i < s.count(); ++i) {
    Chunk c = s.at(i);
    EXPECT_EQ(c.offset, next);
    EXPECT_EQ(c.channel, (2 + i) % 3);
    next += c.size;
  }
  EXPECT_EQ(next, 10u * 4096 + 5);
  EXPECT_EQ(s.at(10).size, 5u);
  ASSERT_TRUE(ChunkSchedule::make(0, 4096, 1, 0, &s).ok());
  EXPECT_EQ(s.count(), 0u);
  EXPECT_FALSE(ChunkSchedule::make(1, 5u << 20, 1, 0, &s).ok());
  EXPECT_FALSE(ChunkSchedule::make(1, 4096, 0, 0, &s).ok());
  EXPECT_FALSE(ChunkSchedule::make(1, 4096, 2, 2, &s).ok());
}

// A request may wait for the next pass only behind a request that left and
// whose reply is still owed; sends behind any, writes and reads behind
// one-sided ones (engine/owed_replies.h).
TEST(OwedRepliesTest, OnlyRequestsThatLeftCountAndOneSidedOnesStandApart) {
  engine::OwedReplies o;
  EXPECT_FALSE(o.reply_on_the_way(false));
  o.queued(/*one_sided=*/false);  // a send, still in the write buffer
  EXPECT_FALSE(o.reply_on_the_way(false)) << "a request that has not left brings no reply";
  o.all_sent();
  EXPECT_TRUE(o.reply_on_the_way(false));
  EXPECT_FALSE(o.reply_on_the_way(true)) << "a write must not wait behind a send";
  o.queued(/*one_sided=*/true);  // a write, queued behind it
  EXPECT_FALSE(o.reply_on_the_way(true));
  o.all_sent();
  EXPECT_TRUE(o.reply_on_the_way(true));
  o.answered(true);
  EXPECT_FALSE(o.reply_on_the_way(true));
  EXPECT_TRUE(o.reply_on_the_way(false));
  o.answered(false);
  EXPECT_FALSE(o.reply_on_the_way(false));
  // An op that ended without a reply (its connection failed) never makes the
  // counts go below zero, nor leaves one behind.
  o.answered(true);
  o.answered(false);
  o.queued(false);
  EXPECT_FALSE(o.reply_on_the_way(false));
  o.all_sent();
  EXPECT_TRUE(o.reply_on_the_way(false));
}

// SpinPolicy: which way is faster is learnt from the waits themselves.
namespace {
using std::chrono::microseconds;
// Runs n waits through p, each taking spun_us when allowed to spin and
// slept_us when not; returns how many were allowed to spin.
int run_waits(engine::SpinPolicy& p, int n, int spun_us, int slept_us) {
  int spun = 0;
  for (int i = 0; i < n; ++i) {
    bool spin = p.next_budget_us() > 0;
    spun += spin;
    p.record(spin, microseconds(spin ? spun_us : slept_us));
  }
  return spun;
}
}  // namespace

TEST(SpinPolicyTest, SpinsWhileSpinningWaitsAreFasterAndExploresLessAndLess) {
  engine::SpinPolicy p(200);
  EXPECT_TRUE(p.spinning()) << "spins until a sleeping wait was measured";
  // Quiet host: a spinning wait takes 7 us, a sleeping one 45 us (a wake-up).
  int spun = run_waits(p, 10000, 7, 45);
  EXPECT_TRUE(p.spinning());
  // Exploration starts at every 64th wait and backs off to every 1024th
  // while the sleeping samples keep losing: only a few dozen of 10,000.
  EXPECT_GT(spun, 10000 - 40);
  EXPECT_LT(spun, 10000);
}

TEST(SpinPolicyTest, StopsWhenSpinningOnlyDelaysThePeerAndComesBack) {
  engine::SpinPolicy p(200);
  // The peer shares our core: a spin runs out (224 us), a sleep takes 18.
  int spun = run_waits(p, 10000, 224, 18);
  EXPECT_FALSE(p.spinning());
  EXPECT_LT(spun, 100) << "only the first 63 waits and rare probes may spin";
  // The host becomes quiet: the next probes find spinning faster again.
  spun = run_waits(p, 5000, 7, 45);
  EXPECT_TRUE(p.spinning());
  EXPECT_GT(spun, 5000 - 1100) << "back within about one exploration interval";
}

TEST(SpinPolicyTest, KeepsSpinningThroughRareLongSpinsWhenTheyStillPay) {
  // The waiters' policy in a quiet ping-pong: a spinning wait takes 4 us,
  // and one in 40 waits 300 us for a peer that was descheduled or slept
  // (11.4 us on average); a sleeping wait takes 25 us. Averages kept in
  // whole microseconds with a 1/8 step rose with every long wait and could
  // not come back down (steps under 1 us truncated to 0): they flipped the
  // choice to sleeping over and over.
  engine::SpinPolicy p;
  p.reset(200, 0, false, engine::SpinPolicy::kWaitWindow);
  int spun = 0, spins = 0;
  for (int i = 0; i < 20000; ++i) {
    bool spin = p.next_budget_us() > 0;
    spun += spin;
    int us = spin ? (++spins % 40 == 0 ? 300 : 4) : 25;
    p.record(spin, microseconds(us));
  }
  EXPECT_TRUE(p.spinning());
  EXPECT_GT(spun, 20000 - 200) << "only exploring waits sleep";
}

TEST(SpinPolicyTest, SpinsOnABusyHostWhenMissesCostNothingExtra) {
  engine::SpinPolicy p(200);
  // Beside CPU hogs: half the waits finish while spinning (10 us); the
  // others wait for a descheduled peer (1.5 ms) however they wait, and a
  // sleeping wait always pays a wake-up on top. A miss counter would stop
  // spinning here; the wait times say it still pays.
  int spun = 0;
  for (int i = 0; i < 10000; ++i) {
    bool spin = p.next_budget_us() > 0;
    spun += spin;
    bool peer_away = i % 2 == 1;
    int us = peer_away ? 1500 + (spin ? 200 : 40) : (spin ? 10 : 40);
    p.record(spin, microseconds(us));
  }
  EXPECT_TRUE(p.spinning());
  EXPECT_GT(spun, 9500);
}

TEST(SpinPolicyTest, LongWaitsDoNotCountAndABudgetOfZeroNeverSpins) {
  engine::SpinPolicy p(200);
  // Long transfers take as long either way: they say nothing about how to
  // wait, and a few of them must not outweigh the short waits.
  run_waits(p, 2000, 7, 45);
  for (int i = 0; i < 100; ++i) p.record(true, std::chrono::seconds(5));
  EXPECT_TRUE(p.spinning());
  run_waits(p, 2000, 7, 45);
  EXPECT_TRUE(p.spinning());
  engine::SpinPolicy off(0);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(off.next_budget_us(), 0);
}

TEST(SpinPolicyTest, WithACapLongStallsCountAsTheCapAndDecide) {
  // The background thread's stalls (2 ms budget, 8 ms cap). The peer process
  // shares our core: a spinning stall lasts until our time slice ends
  // (3 ms, past the budget, so an uncapped policy would ignore it), a
  // yielding one 40 us. The capped policy learns to yield.
  engine::SpinPolicy shared(2000, 8000);
  int spun = run_waits(shared, 5000, 3000, 40);
  EXPECT_FALSE(shared.spinning());
  EXPECT_LT(spun, 100);
  engine::SpinPolicy uncapped(2000);
  run_waits(uncapped, 5000, 3000, 40);
  EXPECT_TRUE(uncapped.spinning()) << "the wait policy leaves such samples out";
  // A CPU hog shares our core: yielding loses its time slice (20 ms, counted
  // as 8), spinning waits 500 us for the peer's other core.
  engine::SpinPolicy hog(2000, 8000);
  spun = run_waits(hog, 5000, 500, 20000);
  EXPECT_TRUE(hog.spinning());
  EXPECT_GT(spun, 5000 - 40);
}

TEST(SpinPolicyTest, WithShortGapsItSleepsThroughSparseRequestsAndSpinsForAStream) {
  // The background thread between a peer's requests (200 us budget). A
  // stream of requests: the next one comes 15 us after the last was served.
  engine::SpinPolicy p(200, 0, /*short_gaps=*/true);
  int spun = run_waits(p, 1000, 15, 60);
  EXPECT_TRUE(p.gaps_short());
  EXPECT_GT(spun, 1000 - 40);
  // One request every 20 ms (a FIFO round trip now and then): every spin
  // would run out, and the waiters' rule alone (which leaves such waits out)
  // would go on spinning. It sleeps after a few, without probing.
  int late = run_waits(p, 1000, 20000, 20000);
  EXPECT_FALSE(p.gaps_short());
  EXPECT_LT(late, 10);
  engine::SpinPolicy waiters(200);
  EXPECT_GT(run_waits(waiters, 1000, 20000, 20000), 950) << "only its probes sleep";
  // The stream comes back: the sleeping waits themselves bring the average
  // down, and it spins again within a dozen requests.
  spun = run_waits(p, 100, 15, 60);
  EXPECT_TRUE(p.gaps_short());
  EXPECT_GT(spun, 100 - 15);
}

TEST(SpinEpisodeTest, KeepsTheCoreWithinBudgetUntilAPollerIsRefusedAndTeachesThePolicy) {
  using Clock = engine::SpinEpisode::Clock;
  engine::SpinPolicy p(200);
  engine::SpinEpisode e;
  const auto t0 = Clock::now();
  EXPECT_FALSE(e.keeps_core(t0, microseconds(200), 0)) << "no wait begun";
  e.begin(p, t0, 7);
  ASSERT_TRUE(e.active());
  EXPECT_TRUE(e.keeps_core(t0 + microseconds(199), microseconds(200), 7));
  EXPECT_FALSE(e.keeps_core(t0 + microseconds(200), microseconds(200), 7)) << "budget used up";
  EXPECT_FALSE(e.keeps_core(t0 + microseconds(10), microseconds(200), 8)) << "a try_pass was refused";
  // Spinning waits of 150 us against sleeping ones of 20: the policy learns
  // from what the episodes report, and a dropped one reports nothing.
  for (int i = 0; i < 200; ++i) {
    auto t = Clock::now();
    e.begin(p, t, 0);
    if (i % 3 == 0) {
      e.drop();
      EXPECT_FALSE(e.active());
      continue;
    }
    const bool spins = e.keeps_core(t, microseconds(200), 0);
    e.end(p, t + microseconds(spins ? 150 : 20));
    EXPECT_FALSE(e.active());
  }
  // The first 63 waits spin and no sleeping wait has reported yet; then
  // exploration finds sleeping faster, and the policy stops spinning.
  EXPECT_FALSE(p.spinning());
  engine::SpinPolicy never(0);
  e.begin(never, t0, 0);
  EXPECT_FALSE(e.keeps_core(t0, microseconds(200), 0)) << "a budget of 0 never spins";
}

// A wait the core's sharing decides gives the core away and reports nothing.
TEST(SpinEpisodeTest, AWaitThatGivesUpItsCoreTeachesThePolicyNothing) {
  using Clock = engine::SpinEpisode::Clock;
  engine::SpinPolicy p(200);
  engine::SpinEpisode e;
  // Spinning waits take 150 us; the waits that gave up their core take 20,
  // and would turn the policy to sleeping if they reported.
  for (int i = 0; i < 400; ++i) {
    const auto t = Clock::now();
    e.begin(p, t, 0);
    if (i % 2 == 1) {
      e.give_up_core();
      EXPECT_TRUE(e.active());
      EXPECT_FALSE(e.keeps_core(t, microseconds(200), 0));
      e.end(p, t + microseconds(20));
    } else if (e.keeps_core(t, microseconds(200), 0)) {
      e.end(p, t + microseconds(150));
    } else {
      e.drop();  // an exploring sleep: not part of this test
    }
    EXPECT_FALSE(e.active());
  }
  EXPECT_TRUE(p.spinning()) << "a wait that gave up its core reached the policy";
}

// CoreContention: looks at a stall that come long after the previous one,
// beyond the time the thread meant to be away, twice within kHold, mark the
// core shared for a while; a single stray one does not.
TEST(CoreContentionTest, LostGapsMarkTheCoreSharedForAWhileAndPlannedAbsencesDoNot) {
  using engine::CoreContention;
  using std::chrono::milliseconds;
  const auto lost = CoreContention::kLostGap;
  const auto hold = CoreContention::kHold;
  CoreContention c;
  auto t = CoreContention::Clock::now();
  c.first_look(t);
  EXPECT_FALSE(c.shared(t));
  for (int i = 0; i < 1000; ++i) c.look(t += microseconds(3));  // a quiet spin
  EXPECT_FALSE(c.shared(t));
  for (int i = 0; i < 3; ++i) {  // sleeps of its own: not lost time
    c.will_be_away(milliseconds(1));
    c.look(t += lost + milliseconds(1) - microseconds(1));
  }
  c.look(t += lost);  // exactly the gap: not yet lost
  EXPECT_FALSE(c.shared(t));
  c.look(t += lost + microseconds(1));  // runnable, not running: once
  EXPECT_FALSE(c.shared(t)) << "one stray gap";
  c.look(t += hold);  // the next one too late to count with it
  EXPECT_FALSE(c.shared(t));
  c.look(t += hold - microseconds(1));  // a second within kHold
  EXPECT_TRUE(c.shared(t));
  const auto marked = t;
  c.will_be_away(microseconds(30));
  c.look(t += microseconds(40));  // a nap a little late: nothing new
  EXPECT_TRUE(c.shared(marked + hold - microseconds(1)));
  EXPECT_FALSE(c.shared(marked + hold));
  // A nap that comes back far too late renews the mark.
  c.will_be_away(microseconds(30));
  c.look(t = marked + hold - microseconds(10));
  EXPECT_TRUE(c.shared(t + hold - microseconds(1)));
  // A new stall starts afresh: the time since the last stall is no gap.
  c.first_look(t += hold * 3);
  c.look(t += microseconds(5));
  EXPECT_FALSE(c.shared(t));
}

// SpinProbe: windows at multiples of the period on the shared clock; the
// period doubles while windows end with the policy still sleeping.
TEST(SpinProbeTest, WindowsOnTheClockBackOffWhileSleepingStaysRightAndResetWhenSpinningWins) {
  using std::chrono::milliseconds;
  engine::SpinProbe probe;
  // Times far from the clock's epoch, as a host's are; 1024 s is a multiple
  // of every period.
  auto at = [](int64_t ms) { return engine::SpinProbe::Clock::time_point(milliseconds(1024000 + ms)); };
  ASSERT_EQ(probe.period(), engine::SpinProbe::kFirstPeriod);
  EXPECT_EQ(probe.spin_for(at(150), true).count(), 0) << "between windows";
  EXPECT_EQ(probe.spin_for(at(10), false).count(), 0) << "the policy spins anyway";
  EXPECT_EQ(probe.spin_for(at(510), true), microseconds(milliseconds(90))) << "to the window's end";
  EXPECT_EQ(probe.spin_for(at(560), true), microseconds(milliseconds(40)));
  // The window is over and the policy still sleeps: windows twice as far apart.
  EXPECT_EQ(probe.spin_for(at(650), true).count(), 0);
  EXPECT_EQ(probe.period(), milliseconds(1000));
  EXPECT_EQ(probe.spin_for(at(1510), true).count(), 0) << "not a multiple of the new period";
  EXPECT_GT(probe.spin_for(at(2010), true).count(), 0);
  EXPECT_EQ(probe.spin_for(at(2200), true).count(), 0);
  EXPECT_EQ(probe.period(), milliseconds(2000));
  // Up to kMaxPeriod, never past it.
  for (int64_t t = 4000; t < 200000; t += 2000) {
    probe.spin_for(at(t + 10), true);
    probe.spin_for(at(t + 150), true);
  }
  EXPECT_EQ(probe.period(), engine::SpinProbe::kMaxPeriod);
  // A window after which the policy spins: back to the first period.
  EXPECT_GT(probe.spin_for(at(208000 + 10), true).count(), 0);
  EXPECT_EQ(probe.spin_for(at(208000 + 150), false).count(), 0);
  EXPECT_EQ(probe.period(), engine::SpinProbe::kFirstPeriod);
  EXPECT_GT(probe.spin_for(at(208500 + 10), true).count(), 0);
  // So does a policy that turns to spinning by itself, outside any window.
  probe.spin_for(at(208500 + 150), true);
  EXPECT_EQ(probe.period(), milliseconds(1000));
  probe.spin_for(at(208700), false);
  EXPECT_EQ(probe.period(), engine::SpinProbe::kFirstPeriod);
}

// Requests and acks are not pressing; anything else is, until it is written.
TEST(ControlChannelTest, UrgencyOfWhatIsQueued) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  engine::ControlChannel c(sv[0]);
  ASSERT_TRUE(c.queue(engine::FrameType::kWriteAck, 1, {}, engine::Urgency::kLazy).ok());
  EXPECT_FALSE(c.has_urgent());
  EXPECT_FALSE(c.has_pressing());
  ASSERT_TRUE(c.queue2(engine::FrameType::kSendEager, 2, {}, "abc", 3, engine::Urgency::kRequest).ok());
  EXPECT_TRUE(c.has_urgent());
  EXPECT_FALSE(c.has_pressing());
  ASSERT_TRUE(c.queue(engine::FrameType::kPong, 0, {}).ok());
  EXPECT_TRUE(c.has_pressing());
  ASSERT_TRUE(c.flush().ok());
  EXPECT_FALSE(c.wants_write());
  EXPECT_FALSE(c.has_urgent());
  EXPECT_FALSE(c.has_pressing());
  close(sv[1]);
}

TEST(ConfigTest, EnvOverridesAndMalformedValues) {
  setenv("TCPX_CHANNELS", "4", 1);
  setenv("TCPX_CHUNK_BYTES", "524288", 1);
  Config c;
  ASSERT_TRUE(Config::from_env(&c).ok());
  EXPECT_EQ(c.channels_per_peer, 4);
  EXPECT_EQ(c.chunk_bytes, 524288u);
  setenv("TCPX_CHANNELS", "4x", 1);
  Status s = Config::from_env(&c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("TCPX_CHANNELS"), std::string::npos);
  unsetenv("TCPX_CHANNELS");
  setenv("TCPX_CHUNK_BYTES", "8388608", 1);
  s = Config::from_env(&c);
  EXPECT_NE(s.message().find("TCPX_CHUNK_BYTES"), std::string::npos);
  unsetenv("TCPX_CHUNK_BYTES");
  setenv("TCPX_LISTEN_PORT", "-1", 1);
  EXPECT_NE(Config::from_env(&c).message().find("TCPX_LISTEN_PORT"), std::string::npos);
  unsetenv("TCPX_LISTEN_PORT");
  setenv("TCPX_TRANSFER_TIMEOUT_MS", "250", 1);
  ASSERT_TRUE(Config::from_env(&c).ok());
  EXPECT_EQ(c.transfer_timeout_ms, 250);
  setenv("TCPX_TRANSFER_TIMEOUT_MS", "-5", 1);
  EXPECT_NE(Config::from_env(&c).message().find("TCPX_TRANSFER_TIMEOUT_MS"), std::string::npos);
  unsetenv("TCPX_TRANSFER_TIMEOUT_MS");
  setenv("TCPX_MAX_UNMATCHED_BYTES", "1048576", 1);
  setenv("TCPX_MAX_UNDELIVERED_BYTES", "4194304", 1);
  setenv("TCPX_MAX_CONTROL_BACKLOG_BYTES", "8388608", 1);
  ASSERT_TRUE(Config::from_env(&c).ok());
  EXPECT_EQ(c.max_unmatched_bytes, 1048576u);
  EXPECT_EQ(c.max_undelivered_bytes, 4194304u);
  EXPECT_EQ(c.max_control_backlog_bytes, 8388608u);
  for (const char* var : {"TCPX_MAX_UNMATCHED_BYTES", "TCPX_MAX_UNDELIVERED_BYTES", "TCPX_MAX_CONTROL_BACKLOG_BYTES"}) {
    setenv(var, "1000", 1);  // below the minimum
    EXPECT_NE(Config::from_env(&c).message().find(var), std::string::npos) << var;
    unsetenv(var);
  }
  c = Config();
  c.max_undelivered_bytes = 1 << 20;  // a maximal message would not fit
  EXPECT_NE(c.validate().message().find("max_undelivered_bytes"), std::string::npos);
  EXPECT_TRUE(Config::from_env(&c).ok());
  EXPECT_NE(c.describe().find("chunk_bytes="), std::string::npos);
  EXPECT_NE(c.describe().find("max_control_backlog_bytes="), std::string::npos);
}

// Retired vector transfers keep their piece results for the most recent
// kKeptRetired of them (and kKeptPieces pieces in all), then NOT_FOUND.
TEST(TransferTableTest, PieceResultsKeptForRecentRetiredTransfers) {
  TransferTable t;
  auto run = [&t](size_t pieces) {
    XferId id = t.create(pieces);
    for (size_t i = 0; i < pieces; ++i) t.piece_done(id, i, i == 1 ? NotFound("gone") : Status::Ok(), 1);
    EXPECT_EQ(t.poll(id).code(), StatusCode::kNotFound);  // the transfer's result: piece 1's
    EXPECT_EQ(t.poll(id).code(), StatusCode::kNotFound);  // and retired
    return id;
  };
  XferId first = run(2);
  Status st;
  ASSERT_TRUE(t.piece_status(first, 0, &st).ok());
  EXPECT_TRUE(st.ok());
  ASSERT_TRUE(t.piece_status(first, 1, &st).ok());
  EXPECT_EQ(st.message(), "gone");
  XferId single = t.create(1);
  t.piece_done(single, 0, Status::Ok(), 1);
  ASSERT_TRUE(t.poll(single).ok());
  EXPECT_EQ(t.piece_status(single, 0, &st).code(), StatusCode::kNotFound);  // one piece: not kept
  for (size_t i = 1; i < TransferTable::kKeptRetired; ++i) run(2);
  EXPECT_TRUE(t.piece_status(first, 1, &st).ok());  // still among the most recent
  run(2);
  EXPECT_EQ(t.piece_status(first, 1, &st).code(), StatusCode::kNotFound);
  // The piece bound: one huge vector pushes out older ones.
  XferId recent = run(2);
  run(TransferTable::kKeptPieces - 1);
  EXPECT_EQ(t.piece_status(recent, 0, &st).code(), StatusCode::kNotFound);
}

TEST(MrTableTest, ContainmentBoundsAndBusy) {
  MrTable t;
  std::vector<uint8_t> a(8192), b(100);
  MrId ma, mb;
  ASSERT_TRUE(t.reg(a.data(), a.size(), &ma).ok());
  ASSERT_TRUE(t.reg(b.data(), b.size(), &mb).ok());
  MrId found;
  ASSERT_TRUE(t.find(a.data() + 100, 8000, &found).ok());
  EXPECT_EQ(found, ma);
  EXPECT_EQ(t.find(a.data() + 100, 8100, &found).code(), StatusCode::kNotFound);
  MrInfo info;
  ASSERT_TRUE(t.acquire_local(ma, a.data() + 8192, 0, &info).ok());
  EXPECT_EQ(t.dereg(ma).code(), StatusCode::kBusy);
  t.release(ma);
  EXPECT_FALSE(t.acquire_local(ma, a.data() + 1, 8192, &info).ok());
  ASSERT_TRUE(t.lookup(mb, &info).ok());
  FifoFields f{mb, info.token, 50, 50, 0};
  ASSERT_TRUE(t.acquire_remote(f, 50, &info).ok());
  t.release(mb);
  FifoFields wrong_token = f;
  wrong_token.mr_token ^= 1;
  EXPECT_EQ(t.acquire_remote(wrong_token, 50, &info).code(), StatusCode::kInvalidArgument);
  FifoFields oob = f;
  oob.offset = 60;
  EXPECT_EQ(t.acquire_remote(oob, 50, &info).code(), StatusCode::kInvalidArgument);
  FifoFields wrap = f;
  wrap.offset = 10;
  wrap.size = UINT64_MAX - 5;  // offset + size overflows
  EXPECT_EQ(t.acquire_remote(wrap, 1, &info).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.acquire_remote(f, 51, &info).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(t.dereg(mb).ok());
  EXPECT_EQ(t.acquire_remote(f, 50, &info).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.dereg(mb).code(), StatusCode::kNotFound);
}

TEST(LivenessTest, PingsSoonerWhenBusyAndDeclaresASilentPeerDeadAfterTheTimeout) {
  using std::chrono::milliseconds;
  using A = Liveness::Action;
  const auto t0 = Liveness::Clock::time_point{} + std::chrono::hours(1);
  // Busy: ping after T/4 of silence, dead at T with the ping unanswered.
  Liveness busy(1000, t0);
  EXPECT_EQ(busy.check(t0 + milliseconds(249), true), A::kNone);
  EXPECT_EQ(busy.next_event(true), t0 + milliseconds(250));
  EXPECT_EQ(busy.check(t0 + milliseconds(250), true), A::kPing);
  EXPECT_EQ(busy.check(t0 + milliseconds(500), true), A::kNone);  // one ping at a time
  EXPECT_EQ(busy.next_event(true), t0 + milliseconds(1000));
  EXPECT_EQ(busy.check(t0 + milliseconds(999), true), A::kNone);
  EXPECT_EQ(busy.check(t0 + milliseconds(1000), true), A::kDead);
  EXPECT_EQ(busy.silent_for(t0 + milliseconds(1000)), milliseconds(1000));

  // An answer (or any bytes) resets the clock.
  Liveness live(1000, t0);
  EXPECT_EQ(live.check(t0 + milliseconds(300), true), A::kPing);
  live.heard(t0 + milliseconds(310));
  EXPECT_EQ(live.check(t0 + milliseconds(1200), true), A::kPing);
  live.heard(t0 + milliseconds(1201));
  EXPECT_EQ(live.check(t0 + milliseconds(1400), true), A::kNone);

  // Idle: ping after T; dead once silent for T with a ping out for T/2.
  Liveness idle(1000, t0);
  EXPECT_EQ(idle.check(t0 + milliseconds(999), false), A::kNone);
  EXPECT_EQ(idle.check(t0 + milliseconds(1000), false), A::kPing);
  EXPECT_EQ(idle.next_event(false), t0 + milliseconds(1500));
  EXPECT_EQ(idle.check(t0 + milliseconds(1499), false), A::kNone);
  EXPECT_EQ(idle.check(t0 + milliseconds(1500), false), A::kDead);

  // Turning busy after a long idle spell gives a live peer T/2 to answer.
  Liveness wake(1000, t0);
  EXPECT_EQ(wake.check(t0 + milliseconds(1900), true), A::kPing);
  EXPECT_EQ(wake.check(t0 + milliseconds(2000), true), A::kNone);
  wake.heard(t0 + milliseconds(2001));
  EXPECT_EQ(wake.check(t0 + milliseconds(2100), true), A::kNone);
}
