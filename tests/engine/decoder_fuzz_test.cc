// Mutation fuzzing of every decoder that reads bytes from the network or
// from a caller: control frames (as a byte stream, the way ControlChannel
// feeds them), every frame payload, FifoItems, the metadata blob and string,
// and the C API's md-vector / FIFO messages (src/capi/wire.cc is compiled in). Valid encodings are corrupted (bytes flipped or set, truncated,
// extended, spliced) with a fixed seed, so a failure reproduces. Each
// decoder must answer with OK or its documented error code, never read out
// of bounds (the ASan/UBSan job runs this too), and what it accepts must
// satisfy the limits the rest of the engine relies on.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "capi/wire.h"
#include "engine/fifo_item.h"
#include "engine/metadata.h"
#include "engine/wire.h"

using namespace tcpx;
using namespace tcpx::engine;

namespace {

constexpr int kRounds = 100000;  // per decoder: tens of ms each, seconds under sanitizers

using Bytes = std::vector<uint8_t>;

// One to four random corruptions of a valid encoding.
Bytes mutate(const Bytes& good, std::mt19937_64& rng) {
  Bytes b = good;
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    size_t at = b.empty() ? 0 : rng() % b.size();
    switch (rng() % 6) {
      case 0:
        if (!b.empty()) b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:
        if (!b.empty()) b[at] = static_cast<uint8_t>(rng());
        break;
      case 2:
        if (!b.empty()) b[at] = (rng() & 1) ? 0xFF : 0x00;
        break;
      case 3:
        b.resize(b.empty() ? 0 : rng() % b.size());  // truncate
        break;
      case 4:
        for (int k = static_cast<int>(rng() % 16); k >= 0; --k) b.push_back(static_cast<uint8_t>(rng()));
        break;
      default:
        if (b.size() > 8) {  // copy a slice of the encoding over another place
          size_t from = rng() % (b.size() - 4), len = 1 + rng() % 4;
          std::copy(b.begin() + static_cast<long>(from), b.begin() + static_cast<long>(from + len),
                    b.begin() + static_cast<long>(at < b.size() - len ? at : 0));
        }
    }
  }
  return b;
}

// Runs `decode` on kRounds mutations of each seed encoding; the decoder's
// answer must be OK (then `accepted` checks the result) or `error`.
void fuzz(const std::vector<Bytes>& seeds, StatusCode error, const std::function<Status(const Bytes&)>& decode,
          uint64_t seed) {
  std::mt19937_64 rng(seed);
  int ok = 0, rejected = 0;
  for (int i = 0; i < kRounds; ++i) {
    const Bytes& good = seeds[static_cast<size_t>(i) % seeds.size()];
    Bytes b = mutate(good, rng);
    Status s = decode(b);
    if (s.ok()) {
      ++ok;
    } else {
      ASSERT_EQ(s.code(), error) << s.to_string() << " (round " << i << ")";
      ++rejected;
    }
  }
  // The mutations must actually reach the error paths.
  EXPECT_GT(rejected, kRounds / 10) << "ok " << ok;
}

TEST(DecoderFuzz, FrameStreams) {
  // A stream of several frames, decoded the way ControlChannel::read_frames
  // does: frame after frame until an incomplete prefix or an error.
  Bytes stream;
  HelloPayload h;
  h.protocol_version = 1;
  h.self = {"10.1.2.3", 4000, 1};
  h.channels = 2;
  h.handles.resize(2);
  ASSERT_TRUE(append_frame(FrameType::kHello, 1, encode_hello(h), &stream).ok());
  ASSERT_TRUE(append_frame(FrameType::kData, 2, encode_data({5000, 1 << 20, 2, 1}), &stream).ok());
  ASSERT_TRUE(append_frame(FrameType::kNotify, 3, encode_notify({"n", "m"}), &stream).ok());
  ASSERT_TRUE(append_frame(FrameType::kMessage, 4, Bytes(300, 0x5a), &stream).ok());
  fuzz({stream}, StatusCode::kProtocolError,
       [](const Bytes& b) {
         size_t off = 0;
         for (;;) {
           Frame f;
           size_t used = 0;
           Status s = decode_frame(b.data() + off, b.size() - off, &f, &used);
           if (!s.ok()) return s;
           if (used == 0) return Status::Ok();  // incomplete: wait for more bytes
           if (used > b.size() - off) return Internal("consumed past the input");
           if (used != kFrameHeaderBytes + f.payload.size()) return Internal("consumed != header + payload");
           if (f.payload.size() > kMaxPayloadBytes) return Internal("oversized payload accepted");
           if (static_cast<uint8_t>(f.type) == 0 || static_cast<uint8_t>(f.type) > kMaxFrameType)
             return Internal("unknown frame type accepted");
           off += used;
         }
       },
       1);
}

TEST(DecoderFuzz, HelloPayload) {
  HelloPayload v4, v6;
  v4.protocol_version = 1;
  v4.self = {"127.0.0.1", 28900, 0};
  v4.channels = 3;
  v4.handles.resize(3);
  v6 = v4;
  v6.self = {"fe80::1", 1, 7};
  v6.channels = 1;
  v6.handles.resize(1);
  fuzz({encode_hello(v4), encode_hello(v6)}, StatusCode::kProtocolError,
       [](const Bytes& b) {
         HelloPayload o;
         Status s = decode_hello(b, &o);
         if (s.ok() && o.handles.size() != o.channels) return Internal("handles do not match channels");
         return s;
       },
       2);
}

TEST(DecoderFuzz, SmallPayloads) {
  fuzz({encode_reject({StatusCode::kInvalidArgument, "region not registered"})}, StatusCode::kProtocolError,
       [](const Bytes& b) {
         RejectPayload o;
         Status s = decode_reject(b, &o);
         if (s.ok() && o.code == StatusCode::kOk) return Internal("a REJECT decoded as OK");
         if (s.ok() && o.reason.size() > kMaxReasonBytes) return Internal("oversized reason accepted");
         return s;
       },
       3);
  fuzz({encode_ack(Status::Ok()), encode_ack(InvalidArgument("out of bounds"))}, StatusCode::kProtocolError,
       [](const Bytes& b) {
         Status verdict;
         Status s = decode_ack(b, &verdict);
         if (s.ok() && verdict.in_progress()) return Internal("a WRITE_ACK decoded as IN_PROGRESS");
         if (s.ok() && verdict.message().size() > kMaxReasonBytes + 64) return Internal("oversized reason accepted");
         return s;
       },
       11);
  fuzz({encode_u64(0x0102030405060708ull)}, StatusCode::kProtocolError,
       [](const Bytes& b) {
         uint64_t v;
         return decode_u64(b, &v);
       },
       4);
  fuzz({encode_data({1, 4096, 1, 0}), encode_data({64ull << 20, 1 << 20, 4, 3})}, StatusCode::kProtocolError,
       [](const Bytes& b) {
         DataPayload o;
         return decode_data(b, &o);
       },
       5);
  OneSidedPayload one;
  one.item = encode_fifo_item({3, 0x1234, 4096, 8192, 9});
  one.size = 8192;
  fuzz({encode_one_sided(one)}, StatusCode::kProtocolError,
       [](const Bytes& b) {
         OneSidedPayload o;
         return decode_one_sided(b, &o);
       },
       6);
  fuzz({encode_notify({"agent-7", "transfer 12 done"}), encode_notify({"", ""})}, StatusCode::kProtocolError,
       [](const Bytes& b) {
         NotifyPayload o;
         Status s = decode_notify(b, &o);
         if (s.ok() && (o.name.size() > kMaxNotifyField || o.msg.size() > kMaxNotifyField))
           return Internal("oversized notification field accepted");
         return s;
       },
       7);
}

TEST(DecoderFuzz, FifoItems) {
  FifoItem good = encode_fifo_item({42, 0xfeedfacecafebeefull, 1 << 20, 4096, 5});
  fuzz({Bytes(good.bytes, good.bytes + sizeof good.bytes)}, StatusCode::kInvalidArgument,
       [](const Bytes& b) {
         FifoItem item{};  // exactly 64 bytes, as callers hand them over
         std::copy_n(b.begin(), std::min(b.size(), sizeof item.bytes), item.bytes);
         FifoFields f;
         return decode_fifo_item(item, &f);
       },
       8);
}

TEST(DecoderFuzz, MetadataBlobAndString) {
  Bytes v4, v6;
  ASSERT_TRUE(encode_metadata({"192.168.7.9", 28900, 3}, &v4).ok());
  ASSERT_TRUE(encode_metadata({"2001:db8::5", 443, 0}, &v6).ok());
  fuzz({v4, v6}, StatusCode::kInvalidArgument,
       [](const Bytes& b) {
         PeerInfo p;
         Status s = decode_metadata(b, &p);
         if (s.ok() && p.ip.empty()) return Internal("empty address accepted");
         return s;
       },
       9);
  auto as_bytes = [](const std::string& s) { return Bytes(s.begin(), s.end()); };
  fuzz({as_bytes("127.0.0.1:28900?0"), as_bytes("[::1]:5?12")}, StatusCode::kInvalidArgument,
       [](const Bytes& b) {
         PeerInfo p;
         Status s = parse_metadata_string(std::string(b.begin(), b.end()), &p);
         if (s.ok() && (p.ip.empty() || p.gpu_idx < 0)) return Internal("incomplete metadata string accepted");
         return s;
       },
       10);
}

TEST(DecoderFuzz, CapiMessages) {
  capi::RequestItem reqs[3] = {{capi::ItemOp::kRead, 0x7f0000001000ull, 4096},
                               {capi::ItemOp::kWrite, 0x7f0000002000ull, 1},
                               {capi::ItemOp::kRead, 0x7f0000003000ull, 64ull << 20}};
  std::vector<capi::ReplyItem> replies(2);
  replies[0].index = 0;
  replies[0].item = encode_fifo_item({1, 2, 0, 4096, 0});
  replies[1].index = 1;
  replies[1].op = capi::ItemOp::kWrite;
  replies[1].status = static_cast<uint8_t>(StatusCode::kNotFound);
  fuzz({capi::encode_requests(7, 0, reqs, 3), capi::encode_replies(7, 16, replies)}, StatusCode::kProtocolError,
       [](const Bytes& b) {
         capi::Batch o;
         Status s = capi::decode(b, &o);
         if (!s.ok()) return s;
         size_t n = o.type == capi::MsgType::kRequests ? o.requests.size() : o.replies.size();
         if (n > capi::kItemsPerBatch) return Internal("oversized batch accepted");
         if (o.type == capi::MsgType::kRequests ? !o.replies.empty() : !o.requests.empty())
           return Internal("items of the other message type accepted");
         return s;
       },
       11);
}

}  // namespace
