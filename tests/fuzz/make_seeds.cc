// Writes the seed corpus of every fuzz target, each seed a valid input made
// with the real encoders: tcpx_fuzz_make_seeds <folder> fills
// <folder>/<target>/<seed name>. The committed tests/fuzz/corpus is this
// program's output; the fuzz_seeds_match_encoders test regenerates it and
// compares, so a wire change that leaves the seeds stale fails until they are
// regenerated (tests/fuzz/README.md).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "capi/wire.h"
#include "engine/fifo_item.h"
#include "engine/metadata.h"
#include "engine/wire.h"
#include "net/nccl_net_v7.h"
#include "net/tcp/wire.h"
#include "uccl_p2p/messages.h"

using namespace tcpx;
using namespace tcpx::engine;
using Bytes = std::vector<uint8_t>;
namespace fs = std::filesystem;

namespace {

fs::path g_root;

// A seed that cannot be built is a bug in this program: stop with the reason.
void must(const tcpx::Status& s) {
  if (s.ok()) return;
  std::fprintf(stderr, "make_seeds: %s\n", s.to_string().c_str());
  std::exit(1);
}

void put(const std::string& target, const std::string& name, const Bytes& b) {
  fs::create_directories(g_root / target);
  std::ofstream(g_root / target / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                                                static_cast<std::streamsize>(b.size()));
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes u8(uint8_t v) { return {v}; }
Bytes be(uint64_t v, int n) {
  Bytes b;
  for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return b;
}
Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }
Bytes fifo_bytes(const tcpx::FifoItem& f) { return Bytes(f.bytes, f.bytes + sizeof f.bytes); }

HelloPayload sample_hello(const char* ip, uint32_t channels) {
  HelloPayload h;
  h.protocol_version = 2;
  h.self = {ip, 28900, 1};
  h.expected_peer_gpu = 0;
  h.channels = channels;
  h.handles.resize(channels);
  for (uint32_t c = 0; c < channels; ++c) h.handles[c][0] = static_cast<uint8_t>(c + 1);
  return h;
}

OneSidedPayload sample_one_sided() {
  OneSidedPayload p;
  p.item = encode_fifo_item({3, 0x1234abcd5678ef00ull, 4096, 8192, 9});
  p.size = 8192;
  return p;
}

Bytes frames(std::initializer_list<std::pair<FrameType, Bytes>> list) {
  Bytes out;
  uint64_t id = 1;
  for (const auto& [type, payload] : list) must(append_frame(type, id++, payload, &out));
  return out;
}

void frame_stream() {
  // u16 piece size, then the stream.
  put("frame_stream", "handshake", cat({be(7, 2), frames({{FrameType::kHello, encode_hello(sample_hello("10.0.0.1", 2))},
                                                          {FrameType::kHelloReply, encode_hello(sample_hello("::1", 1))},
                                                          {FrameType::kReady, {}}})}));
  put("frame_stream", "two_sided",
      cat({be(4096, 2), frames({{FrameType::kSendAnnounce, encode_u64(1 << 20)},
                                {FrameType::kCts, encode_u64(77)},
                                {FrameType::kData, encode_data({1 << 20, 256 << 10, 2, 1})},
                                {FrameType::kSendEager, Bytes(100, 0x5a)},
                                {FrameType::kWriteAck, encode_ack(Status::Ok())}})}));
  OneSidedPayload inline_head = sample_one_sided();
  inline_head.size = 16;  // WRITE_INLINE: the head, then exactly `size` bytes
  Bytes inline_write = cat({encode_one_sided(inline_head), Bytes(16, 0xa5)});
  put("frame_stream", "one_sided",
      cat({be(1, 2), frames({{FrameType::kWriteReq, encode_one_sided(sample_one_sided())},
                             {FrameType::kReadReq, encode_one_sided(sample_one_sided())},
                             {FrameType::kWriteInline, inline_write},
                             {FrameType::kReadInline, Bytes(32, 0x11)},
                             {FrameType::kReject, encode_reject({StatusCode::kNotFound, "no such region"})}})}));
  Bytes partial = frames({{FrameType::kPing, {}}, {FrameType::kPong, {}},
                          {FrameType::kNotify, encode_notify({"agent", "done"})},
                          {FrameType::kMessage, Bytes(300, 0x42)}});
  partial.resize(partial.size() - 10);  // the last frame is still arriving
  put("frame_stream", "partial_tail", cat({be(33, 2), partial}));
}

void frame_payload() {
  // u8 selector (frame_payload_fuzz.cc's Payload order), then the payload.
  put("frame_payload", "hello_v4", cat({u8(0), encode_hello(sample_hello("192.168.1.2", 4))}));
  put("frame_payload", "hello_v6", cat({u8(0), encode_hello(sample_hello("fe80::1", 1))}));
  put("frame_payload", "reject", cat({u8(1), encode_reject({StatusCode::kInvalidArgument, "out of bounds"})}));
  put("frame_payload", "ack_ok", cat({u8(2), encode_ack(Status::Ok())}));
  put("frame_payload", "ack_failed", cat({u8(2), encode_ack(NotFound("region gone"))}));
  put("frame_payload", "u64", cat({u8(3), encode_u64(0x0102030405060708ull)}));
  put("frame_payload", "data", cat({u8(4), encode_data({64ull << 20, 1 << 20, 4, 3})}));
  put("frame_payload", "one_sided", cat({u8(5), encode_one_sided(sample_one_sided())}));
  put("frame_payload", "notify", cat({u8(6), encode_notify({"agent-7", "transfer 12 done"})}));
}

void fifo_item() {
  put("fifo_item", "item", fifo_bytes(encode_fifo_item({42, 0xfeedfacecafebeefull, 1 << 20, 4096, 5})));
  put("fifo_item", "item_zero", fifo_bytes(encode_fifo_item({})));
}

void metadata() {
  Bytes v4, v6;
  must(encode_metadata({"192.168.7.9", 28900, 3}, &v4));
  must(encode_metadata({"2001:db8::5", 443, 0}, &v6));
  put("metadata", "blob_v4", cat({u8(0), v4}));
  put("metadata", "blob_v6", cat({u8(0), v6}));
  put("metadata", "string_v4", cat({u8(1), text(format_metadata_string({"127.0.0.1", 28900, 0}))}));
  put("metadata", "string_v6", cat({u8(1), text(format_metadata_string({"::1", 5, -1}))}));
}

void capi_batch() {
  capi::RequestItem reqs[3] = {{capi::ItemOp::kRead, 0x7f0000001000ull, 4096},
                               {capi::ItemOp::kWrite, 0x7f0000002000ull, 1},
                               {capi::ItemOp::kRead, 0x7f0000003000ull, 64ull << 20}};
  std::vector<capi::ReplyItem> replies(2);
  replies[0].index = 16;
  replies[0].item = encode_fifo_item({1, 2, 0, 4096, 0});
  replies[1].index = 17;
  replies[1].op = capi::ItemOp::kWrite;
  replies[1].status = static_cast<uint8_t>(StatusCode::kNotFound);
  put("capi_batch", "requests", capi::encode_requests(7, 0, reqs, 3));
  put("capi_batch", "replies", capi::encode_replies(7, 16, replies));
}

void uccl_p2p_messages() {
  uccl_p2p::GrantRequest req;
  req.request_id = 99;
  req.first = 4;
  req.refs.resize(2);
  req.refs[0] = {5, {}, 0x7f0000000000ull, 4096};
  req.refs[1] = {6, {}, 0x7f0000100000ull, 1};
  req.refs[1].secret[3] = 0x77;
  uccl_p2p::GrantReply ok;
  ok.request_id = 99;
  ok.first = 4;
  ok.items = {encode_fifo_item({1, 2, 0, 4096, 0}), encode_fifo_item({1, 2, 4096, 1, 0})};
  uccl_p2p::GrantReply refused;
  refused.request_id = 99;
  refused.code = StatusCode::kInvalidArgument;
  refused.bad_index = 1;
  refused.reason = "range outside the grant";
  put("uccl_p2p_messages", "grant_request", uccl_p2p::encode(req));
  put("uccl_p2p_messages", "grant_reply", uccl_p2p::encode(ok));
  put("uccl_p2p_messages", "grant_refused", uccl_p2p::encode(refused));
}

void tcp_plugin_wire() {
  Bytes hello(tcp::kHelloBytes), header(tcp::kMsgHeaderBytes);
  tcp::encode_hello({4, 2, 0x0123456789abcdefull}, hello.data());
  tcp::encode_msg_header(300000, header.data());
  put("tcp_plugin_wire", "hello", cat({u8(0), u8(8), hello}));
  put("tcp_plugin_wire", "msg_header", cat({u8(1), header}));
  put("tcp_plugin_wire", "stripe", cat({u8(2), be(1000000, 8), u8(3)}));
}

void cpu_unpack() {
  // i8 slot, u16 dst size, u16 bounce size - 1, u16 cnt, then the entries.
  auto entry = [](uint32_t src, uint32_t len, uint64_t dst) { return cat({be(src, 4), be(len, 4), be(dst, 8)}); };
  put("cpu_unpack", "two_pages",
      cat({u8(3), be(8192, 2), be(8191, 2), be(2, 2), entry(4096, 4096, 0), entry(0, 4096, 4096)}));
  put("cpu_unpack", "fragments",
      cat({u8(15), be(1000, 2), be(999, 2), be(3, 2), entry(0, 10, 990), entry(10, 500, 0), entry(600, 0, 1000)}));
}

void config_env() {
  // Records "<u8 variable index><value>" separated by NUL (config_env_fuzz.cc's order).
  auto rec = [](uint8_t var, const std::string& v) { return cat({u8(var), text(v), u8(0)}); };
  put("config_env", "engine",
      cat({rec(0, "4"), rec(1, "2"), rec(2, "1048576"), rec(3, "65536"), rec(4, "200"), rec(5, "10000"),
           rec(6, "5000"), rec(7, "-1"), rec(8, "28900"), rec(10, "127.0.0.1")}));
  put("config_env", "plugin", cat({rec(11, "1"), rec(12, "0"), rec(13, "eth0,eth1"), rec(14, "6"), rec(15, "8")}));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  frame_stream();
  frame_payload();
  fifo_item();
  metadata();
  capi_batch();
  uccl_p2p_messages();
  tcp_plugin_wire();
  cpu_unpack();
  config_env();
  return 0;
}
